// Small DOM and formatting helpers shared by the pages: element building, times, durations,
// and the hash route (`#/page?key=value`) that holds each page's state.

/// h("a", {href: "#"}, "text", child...) — attributes starting with "on" become listeners.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    // Through the CSSOM: a `style` attribute is inline style, which the CSP forbids.
    else if (k === "style") Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

/// Local time, to the millisecond: "2026-11-27 14:03:12.345".
export function fmtTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso ?? "");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
  );
}

/// Without the year, for table rows: "11-27 14:03:12.345".
export const fmtRowTime = (iso) => fmtTime(iso).slice(5);

export function fmtShortTime(ms, spanMs) {
  const d = new Date(ms);
  if (spanMs > 2 * 86400e3) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:00`;
  if (spanMs > 3600e3) return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(ms) {
  if (ms === undefined || ms === null) return "";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return `${(ms / 60000).toFixed(1)} min`;
}

export const fmtCount = (n) => Number(n).toLocaleString("en-US");

/// A query term that matches `value` exactly in `field`.
export function term(field, value) {
  return `${field}:"${String(value).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/// The current route: { page, params: URLSearchParams }.
export function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const q = hash.indexOf("?");
  const page = (q >= 0 ? hash.slice(0, q) : hash) || "search";
  return { page, params: new URLSearchParams(q >= 0 ? hash.slice(q + 1) : "") };
}

export function href(page, params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") p.set(k, String(v));
  }
  const s = p.toString();
  return `#/${page}${s ? "?" + s : ""}`;
}

/// Updates the URL without adding a history entry for every keystroke-level change.
export function replaceRoute(page, params) {
  history.replaceState(null, "", href(page, params));
}

export function pushRoute(page, params) {
  history.pushState(null, "", href(page, params));
}

/// Relative time ("-15m", "now") or RFC 3339 to epoch ms, as the API reads it.
export function toMs(value, fallbackMs) {
  if (!value) return fallbackMs;
  if (value === "now") return Date.now();
  const m = /^-(\d+)([smhdw])$/.exec(value);
  if (m) {
    const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[m[2]];
    return Date.now() - Number(m[1]) * unit;
  }
  const t = Date.parse(value);
  return Number.isNaN(t) ? fallbackMs : t;
}

export function errorBox(err, extra) {
  return h("div", { class: "error", role: "alert" }, h("strong", {}, "Error: "), err.detail || err.message, extra);
}

export function empty(text) {
  return h("div", { class: "empty" }, text);
}

export function severityBadge(sev) {
  return h("span", { class: `sev sev-${sev}` }, sev);
}

export function outcomeBadge(outcome) {
  return h("span", { class: `outcome out-${outcome}` }, outcome);
}
