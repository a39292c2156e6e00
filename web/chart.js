// Charts drawn as SVG by hand: a stacked bar histogram over time (with click-drag zoom) and
// horizontal bar lists for top terms. Colours come from CSS classes (`.c-ok`, `.c-error`...),
// so dark and light mode are the stylesheet's business.

import { fmtShortTime, fmtCount, h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

function niceMax(n) {
  if (n <= 5) return Math.max(n, 1);
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= n) return m * p;
  return n;
}

/**
 * A stacked bar chart.
 * series: [{ name, cls, buckets: [{time, count}] }] with the same bucket times in each;
 * intervalSecs: bucket width; onZoom(startMs, endMs) called after a drag across the bars.
 */
export function stackedHistogram(container, { series, intervalSecs, onZoom, label, unit }) {
  const width = Math.max(container.clientWidth || 600, 240);
  const height = 150;
  const pad = { l: 44, r: 8, t: 8, b: 22 };
  const times = (series[0]?.buckets || []).map((b) => Date.parse(b.time));
  const n = times.length;
  const totals = times.map((_, i) => series.reduce((sum, se) => sum + (se.buckets[i]?.count || 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const t0 = n ? times[0] : 0;
  const t1 = n ? times[n - 1] + intervalSecs * 1000 : 1;
  const plotW = width - pad.l - pad.r;
  const plotH = height - pad.t - pad.b;
  const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * plotW;
  const y = (v) => pad.t + plotH - (v / max) * plotH;
  const svg = s("svg", {
    class: "histogram",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": label || "events over time",
  });
  // Grid and y labels.
  for (const frac of [0, 0.5, 1]) {
    const v = max * frac;
    svg.append(s("line", { class: "grid", x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v) }));
    const t = s("text", { class: "axis", x: pad.l - 4, y: y(v) + 4, "text-anchor": "end" });
    t.textContent = Number.isInteger(v) ? fmtCount(v) : v.toFixed(1);
    svg.append(t);
  }
  const bw = Math.max(1, plotW / Math.max(n, 1) - (n > 120 ? 0 : 1));
  const bars = s("g", { class: "bars" });
  for (let i = 0; i < n; i++) {
    let acc = 0;
    const g = s("g", { "data-time": new Date(times[i]).toISOString(), "data-count": totals[i] });
    for (const se of series) {
      const c = se.buckets[i]?.count || 0;
      if (!c) continue;
      g.append(s("rect", { class: `bar ${se.cls}`, x: x(times[i]), y: y(acc + c), width: bw, height: y(acc) - y(acc + c) }));
      acc += c;
    }
    const title = s("title");
    title.textContent =
      `${new Date(times[i]).toLocaleString()}: ${fmtCount(totals[i])} ${unit || "events"}` +
      series.filter((se) => se.buckets[i]?.count).map((se) => `\n  ${se.name}: ${fmtCount(se.buckets[i].count)}`).join("");
    g.append(title);
    bars.append(g);
  }
  svg.append(bars);
  // x labels: about one per 110 px.
  const ticks = Math.max(2, Math.floor(plotW / 110));
  for (let k = 0; k <= ticks; k++) {
    const t = t0 + ((t1 - t0) * k) / ticks;
    const text = s("text", { class: "axis", x: x(t), y: height - 6, "text-anchor": k === 0 ? "start" : k === ticks ? "end" : "middle" });
    text.textContent = fmtShortTime(t, t1 - t0);
    svg.append(text);
  }
  const sel = s("rect", { class: "selection", x: 0, y: pad.t, width: 0, height: plotH, visibility: "hidden" });
  svg.append(sel);
  if (onZoom && n) {
    let from = null;
    const px = (ev) => {
      const r = svg.getBoundingClientRect();
      return Math.min(width - pad.r, Math.max(pad.l, ((ev.clientX - r.left) / r.width) * width));
    };
    svg.addEventListener("pointerdown", (ev) => {
      from = px(ev);
      svg.setPointerCapture(ev.pointerId);
      sel.setAttribute("visibility", "visible");
      sel.setAttribute("x", from);
      sel.setAttribute("width", 0);
    });
    svg.addEventListener("pointermove", (ev) => {
      if (from === null) return;
      const to = px(ev);
      sel.setAttribute("x", Math.min(from, to));
      sel.setAttribute("width", Math.abs(to - from));
    });
    svg.addEventListener("pointerup", (ev) => {
      if (from === null) return;
      const to = px(ev);
      sel.setAttribute("visibility", "hidden");
      const a = Math.min(from, to);
      const b = Math.max(from, to);
      from = null;
      if (b - a < 4) return;
      const tm = (px) => t0 + ((px - pad.l) / plotW) * (t1 - t0);
      onZoom(Math.floor(tm(a)), Math.ceil(tm(b)));
    });
  }
  container.replaceChildren(svg);
  return svg;
}

export function legend(series) {
  return h(
    "ul",
    { class: "legend" },
    series.map((se) => h("li", {}, h("span", { class: `swatch ${se.cls}` }), se.name)),
  );
}

/// Horizontal bars for [{value, count}], each value a link made by `link(value)`.
export function barList(terms, { link, cls } = {}) {
  if (!terms.length) return h("p", { class: "empty" }, "none in this range");
  const max = Math.max(...terms.map((t) => t.count));
  return h(
    "ol",
    { class: "barlist" },
    terms.map((t) =>
      h(
        "li",
        {},
        h("span", { class: "bl-label" }, link ? h("a", { href: link(t.value) }, t.value) : t.value),
        h("span", { class: "bl-bar" }, h("span", { class: `bl-fill ${cls ? cls(t.value) : ""}`, style: { width: `${(100 * t.count) / max}%` } })),
        h("span", { class: "bl-count" }, fmtCount(t.count)),
      ),
    ),
  );
}
