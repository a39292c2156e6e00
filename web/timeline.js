// The conversation timeline: every call of one conversation (or session, or trace) in time
// order, on a time axis and as a list, with tool, outcome, the tool's annotation hints and the
// findings that cite each call; a call opens in the detail panel with its pivots.
// Route: #/timeline?by=conversation_id|session_id|trace_id&id=…  (or &event=… to start from
// one event's conversation).

import { get } from "./api.js";
import { showDetail } from "./detail.js";
import {
  h, clear, href, term, fmtTime, fmtDuration, fmtCount, replaceRoute, errorBox, empty, outcomeBadge, severityBadge,
} from "./dom.js";

const BY = { conversation_id: "conversation", session_id: "session", trace_id: "trace" };
const MAX_EVENTS = 5000;
const SVG = "http://www.w3.org/2000/svg";

/// The annotation hints of a call, with the MCP defaults for absent ones
/// (read_only false, destructive true, idempotent false, open_world true).
export function hints(ev) {
  if (ev.method && ev.method !== "tools/call") return [];
  const a = ev.annotations || {};
  const out = [];
  const readOnly = a.read_only === true;
  if (readOnly) out.push(["read_only", "read-only", a.read_only !== undefined]);
  if (!readOnly && a.destructive !== false) out.push(["destructive", "destructive", a.destructive !== undefined]);
  if (a.idempotent === true) out.push(["idempotent", "idempotent", true]);
  if (a.open_world !== false) out.push(["open_world", "open-world", a.open_world !== undefined]);
  return out.map(([cls, label, explicit]) =>
    h("span", { class: `hint ${cls}`, title: explicit ? "declared by the tool" : "not declared: the MCP default" }, explicit ? label : `${label}?`));
}

function picker(root) {
  const by = h("select", { id: "tl-by", "aria-label": "correlate by" },
    Object.entries(BY).map(([k, v]) => h("option", { value: k }, v)));
  const id = h("input", { type: "text", id: "tl-id", "aria-label": "id", placeholder: "conv-…" });
  const recent = h("div", {}, h("p", { class: "muted" }, "loading recent conversations…"));
  clear(root,
    h("h1", {}, "Timeline"),
    h("form", { class: "searchbar", onsubmit: (e) => { e.preventDefault(); location.hash = href("timeline", { by: by.value, id: id.value.trim() }); } },
      by, id, h("button", { class: "primary" }, "Show")),
    h("h2", {}, "Busiest conversations of the last 24 hours"), recent);
  get("/api/v1/terms", { field: "conversation_id", size: 20 })
    .then((t) => {
      clear(recent, t.terms.length
        ? h("ul", {}, t.terms.map((x) => h("li", {}, h("a", { href: href("timeline", { by: "conversation_id", id: x.value }) }, x.value), ` · ${fmtCount(x.count)} calls`)))
        : empty("No conversations in the last 24 hours."));
      root.dataset.state = "ready";
    })
    .catch((err) => { clear(recent, errorBox(err)); root.dataset.state = "error"; });
}

function axis(events, findingsOf, onPick) {
  const width = 1000;
  const height = 56;
  const t = events.map((e) => Date.parse(e.timestamp));
  const t0 = t[0];
  const t1 = Math.max(t[t.length - 1], t0 + 1000);
  const x = (v) => 12 + ((v - t0) / (t1 - t0)) * (width - 24);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "tl-axis");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${events.length} calls from ${fmtTime(events[0].timestamp)} to ${fmtTime(events[events.length - 1].timestamp)}`);
  const line = document.createElementNS(SVG, "line");
  Object.entries({ x1: 12, x2: width - 12, y1: 28, y2: 28, class: "grid" }).forEach(([k, v]) => line.setAttribute(k, v));
  svg.append(line);
  events.forEach((ev, i) => {
    const c = document.createElementNS(SVG, "circle");
    const cited = findingsOf(ev).length > 0;
    c.setAttribute("cx", x(t[i]));
    c.setAttribute("cy", 28);
    c.setAttribute("r", cited ? 7 : 5);
    c.setAttribute("class", `c-${ev.outcome}${cited ? " cited" : ""}`);
    c.style.cursor = "pointer";
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${fmtTime(ev.timestamp)} ${ev.tool || ev.method} (${ev.outcome})${cited ? " — cited by a finding" : ""}`;
    c.append(title);
    c.addEventListener("click", () => onPick(i));
    svg.append(c);
  });
  for (const [v, anchor] of [[t0, "start"], [t1, "end"]]) {
    const text = document.createElementNS(SVG, "text");
    Object.entries({ x: anchor === "start" ? 12 : width - 12, y: 52, "text-anchor": anchor, class: "axis" }).forEach(([k, val]) => text.setAttribute(k, val));
    text.textContent = fmtTime(new Date(v).toISOString());
    svg.append(text);
  }
  return svg;
}

export function mount(root, params) {
  let by = params.get("by") || "conversation_id";
  let id = params.get("id") || "";
  const fromEvent = params.get("event") || "";
  let selected = -1;
  let events = [];
  let alive = true;
  if (!BY[by]) by = "conversation_id";

  if (!id && !fromEvent) {
    picker(root);
    return { unmount: () => { alive = false; } };
  }
  const head = h("div", {});
  const body = h("div", {}, h("p", { class: "muted" }, "loading…"));
  const detail = h("aside", { class: "detail", id: "detail", hidden: true, "aria-label": "event detail" });
  clear(root, head, h("div", { class: "split" }, h("section", { "aria-label": "calls" }, body), detail));

  async function load() {
    root.dataset.state = "loading";
    try {
      if (!id) {
        const ev = await get(`/api/v1/events/${encodeURIComponent(fromEvent)}`);
        id = ev[by] || ev.conversation_id || ev.session_id || ev.trace_id || "";
        if (!ev[by]) by = ev.conversation_id ? "conversation_id" : ev.session_id ? "session_id" : "trace_id";
        if (!id) {
          clear(head, h("h1", {}, "Timeline"));
          clear(body, empty("This event has no conversation, session or trace id, so it has no timeline. "),
            h("p", {}, h("a", { href: href("search", { q: term("event_id", fromEvent), start: "-30d", event: fromEvent }) }, "Open the event in search")));
          root.dataset.state = "ready";
          return;
        }
        replaceRoute("timeline", { by, id });
      }
      const q = term(by, id);
      const start = params.get("start") || "-30d";
      const end = params.get("end") || "";
      let cursor = null;
      const got = [];
      do {
        const page = await get("/api/v1/search", { q, start, end, limit: 1000, cursor });
        got.push(...page.hits);
        cursor = page.next_cursor;
      } while (cursor && got.length < MAX_EVENTS);
      if (!alive) return;
      events = got.reverse();
      let findings = [];
      if (events.length) {
        const until = new Date(Date.parse(events[events.length - 1].timestamp) + 3600e3).toISOString();
        const r = await get("/api/v1/findings", { since: events[0].timestamp, until, limit: 1000 });
        const ids = new Set(events.map((e) => e.event_id));
        findings = r.findings.filter((f) => f.event_ids.some((x) => ids.has(x)));
      }
      if (!alive) return;
      render(q, findings, Boolean(cursor));
      root.dataset.state = "ready";
    } catch (err) {
      if (!alive) return;
      clear(body, errorBox(err));
      root.dataset.state = "error";
    }
  }

  function render(q, findings, truncated) {
    const first = events[0];
    const users = [...new Set(events.map((e) => e.user).filter(Boolean))];
    clear(head,
      h("h1", {}, `Timeline of ${BY[by]} `, h("code", {}, id)),
      h("p", { class: "muted" },
        `${fmtCount(events.length)} calls`, truncated ? ` (the first ${fmtCount(MAX_EVENTS)})` : "",
        first ? ` · ${fmtTime(first.timestamp)} → ${fmtTime(events[events.length - 1].timestamp)}` : "",
        ` · ${findings.length} finding${findings.length === 1 ? "" : "s"} · `,
        users.map((u) => [h("a", { href: href("search", { q: term("user", u), start: "-7d" }) }, u), " "]),
        "· ", h("a", { href: href("search", { q, start: "-30d" }) }, "these events in search")));
    if (!events.length) {
      clear(body, empty(`No calls with ${by} ${id} in the last 30 days.`));
      return;
    }
    const findingsOf = (ev) => findings.filter((f) => f.event_ids.includes(ev.event_id));
    const t0 = Date.parse(first.timestamp);
    const list = h("ol", { class: "tl-list", id: "timeline" },
      events.map((ev, i) => {
        const cited = findingsOf(ev);
        return h("li", { class: "tl-item", tabindex: "-1", dataset: { id: ev.event_id }, onclick: () => pick(i) },
          h("div", { class: "when" }, fmtTime(ev.timestamp), h("br"), h("span", {}, `+${fmtDuration(Date.parse(ev.timestamp) - t0)}`)),
          h("div", {},
            h("div", { class: "what" },
              h("strong", { class: "tool" }, ev.tool || ev.method), ev.server ? h("span", { class: "muted" }, `on ${ev.server}`) : null,
              outcomeBadge(ev.outcome), h("span", { class: "muted" }, fmtDuration(ev.duration_ms)), hints(ev),
              (ev.redactions || []).length ? h("span", { class: "badge redacted" }, "redacted") : null),
            ev.error ? h("div", { class: "muted" }, ev.error) : null,
            findingLines(ev, cited)));
      }));
    clear(body, h("div", { class: "timeline" }, axis(events, findingsOf, pick)), list);
  }

  // A finding is told in full at the event that triggered it (its last); the other events it
  // cites only say they are evidence, so a burst of 100 calls does not repeat it 100 times.
  function findingLines(ev, cited) {
    if (!cited.length) return null;
    const triggered = cited.filter((f) => f.event_ids[f.event_ids.length - 1] === ev.event_id);
    const evidence = cited.filter((f) => !triggered.includes(f));
    return h("ul", { class: "findings" },
      triggered.map((f) => h("li", { class: "triggered" }, severityBadge(f.severity), " ", f.title, h("span", { class: "muted" }, ` — ${f.explanation}`))),
      evidence.map((f) => h("li", { class: "evidence muted" }, `evidence for: ${f.title}`)));
  }

  function pick(i) {
    if (i < 0 || i >= events.length) return;
    const items = root.querySelectorAll(".tl-item");
    if (selected >= 0 && items[selected]) items[selected].removeAttribute("aria-selected");
    selected = i;
    items[i].setAttribute("aria-selected", "true");
    items[i].focus({ preventScroll: true });
    items[i].scrollIntoView({ block: "nearest" });
    detail.hidden = false;
    showDetail(detail, events[i].event_id, events[i], () => { detail.hidden = true; });
  }

  load();
  return {
    move: (d) => pick(Math.max(0, Math.min(events.length - 1, selected + d))),
    unmount: () => { alive = false; },
  };
}
