// The overview: over the chosen range, events per minute, the top tools, users and servers,
// the outcome breakdown, redactions by kind and findings by severity. Every number links to
// the search (or alerts) that explains it.

import { get } from "./api.js";
import { stackedHistogram, barList } from "./chart.js";
import { intervalFor } from "./search.js";
import { h, clear, href, term, fmtCount, replaceRoute, toMs, errorBox, severityBadge } from "./dom.js";

const PRESETS = [["15m", "-15m"], ["1h", "-1h"], ["24h", "-24h"], ["7d", "-7d"]];
const SEVERITIES = ["critical", "high", "medium", "low", "informational"];

export function mount(root, params) {
  const state = { start: params.get("start") || "-24h", end: params.get("end") || "" };
  let gen = 0;
  const presets = PRESETS.map(([label, value]) =>
    h("button", { type: "button", "aria-pressed": String(!state.end && state.start === value), "data-range": value, onclick: () => setRange(value, "") }, label));
  const rate = h("div", { class: "chart", id: "rate" });
  const rateNote = h("p", { class: "muted" });
  const cards = {};
  const card = (key, title) => (cards[key] = h("div", { class: "card-body" }, h("p", { class: "muted" }, "loading…")),
    h("section", { class: "card", "aria-label": title, id: `card-${key}` }, h("h2", {}, title), cards[key]));
  const status = h("div", {});
  clear(root,
    h("h1", {}, "Overview"),
    h("div", { class: "rangebar" }, h("span", { class: "group", role: "group", "aria-label": "time range presets" }, presets)),
    status,
    h("section", { class: "card", "aria-label": "events per minute" }, h("h2", {}, "Events per minute"), rate, rateNote),
    h("div", { class: "cards" },
      card("tool", "Top tools"), card("user", "Top users"), card("server", "Top servers"),
      card("outcome", "Outcomes"), card("redaction", "Redactions by kind"), card("severity", "Findings by severity")));

  function setRange(start, end) {
    state.start = start;
    state.end = end;
    for (const b of presets) b.setAttribute("aria-pressed", String(!end && b.dataset.range === start));
    load();
  }

  const searchLink = (q) => href("search", { q, start: state.start, end: state.end });

  async function load() {
    const my = ++gen;
    replaceRoute("overview", { start: state.start === "-24h" ? "" : state.start, end: state.end });
    root.dataset.state = "loading";
    clear(status);
    const range = { start: state.start, end: state.end };
    const span = toMs(state.end, Date.now() + 3600e3) - toMs(state.start, Date.now() - 86400e3);
    const [interval, secs] = intervalFor(Math.max(span, 60e3));
    const terms = (field) => get("/api/v1/terms", { field, ...range, size: 10 });
    const atLeast = (severity) =>
      get("/api/v1/findings", { since: state.start, until: state.end, severity, limit: 1 }).then((r) => r.total);
    try {
      const [hist, tool, user, server, outcome, redaction, ...sev] = await Promise.all([
        get("/api/v1/histogram", { ...range, interval }),
        terms("tool"), terms("user"), terms("server"), terms("outcome"), terms("redaction"),
        ...SEVERITIES.map(atLeast),
      ]);
      if (my !== gen) return;
      const perMinute = hist.buckets.map((b) => ({ time: b.time, count: Math.round((b.count * 600) / hist.interval_secs) / 10 }));
      stackedHistogram(rate, {
        series: [{ name: "events per minute", cls: "c-events", buckets: perMinute }], intervalSecs: hist.interval_secs || secs,
        label: "events per minute over the range", unit: "events per minute",
        onZoom: (a, b) => setRange(new Date(a).toISOString(), new Date(b).toISOString()),
      });
      const total = hist.buckets.reduce((n, b) => n + b.count, 0);
      rateNote.textContent = `${fmtCount(total)} events; each bar averages ${interval}; drag across the chart to zoom`;
      clear(cards.tool, barList(tool.terms, { link: (v) => searchLink(term("tool", v)) }));
      clear(cards.user, barList(user.terms, { link: (v) => searchLink(term("user", v)) }));
      clear(cards.server, barList(server.terms, { link: (v) => searchLink(term("server", v)) }));
      clear(cards.outcome, barList(outcome.terms, { link: (v) => searchLink(`outcome:${v}`), cls: (v) => `c-${v}` }));
      clear(cards.redaction, barList(redaction.terms, { link: (v) => searchLink(term("redaction", v)) }));
      // `severity` filters "at least this severe": the count of one level is a difference.
      const exact = sev.map((n, i) => n - (i > 0 ? sev[i - 1] : 0));
      clear(cards.severity, h("ul", { class: "barlist sev-list" }, SEVERITIES.map((s, i) =>
        h("li", {}, h("span", { class: "bl-label" }, h("a", { href: href("alerts", { severity: s, status: "firing" }) }, severityBadge(s))),
          h("span", { class: "bl-bar" }, h("span", { class: "bl-fill", style: { width: `${sev[4] ? (100 * exact[i]) / Math.max(...exact) : 0}%` } })),
          h("span", { class: "bl-count", "data-severity": s }, fmtCount(exact[i]))))));
      root.dataset.state = "ready";
    } catch (err) {
      if (my !== gen) return;
      clear(status, errorBox(err));
      root.dataset.state = "error";
    }
  }

  load();
  return { unmount: () => { gen++; } };
}
