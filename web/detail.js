// The event detail panel: the stored event as pretty JSON with the scrubber's redaction
// markers (`[REDACTED:<kind>:<fingerprint>]`) highlighted, the findings that cite the event,
// and pivots to its conversation, session, trace, user and server.

import { get } from "./api.js";
import { h, clear, href, term, fmtTime, errorBox, severityBadge } from "./dom.js";

const MARKER = /\[REDACTED:[a-z0-9_]+:[0-9a-f]+\]/g;

/// Pretty JSON as nodes, with each redaction marker in a <mark>.
export function prettyJson(value) {
  const text = JSON.stringify(value, null, 2);
  const pre = h("pre", { class: "json" });
  let last = 0;
  for (const m of text.matchAll(MARKER)) {
    pre.append(text.slice(last, m.index));
    const kind = m[0].split(":")[1];
    pre.append(h("mark", { class: "redaction", title: `a ${kind} was removed here before storage` }, m[0]));
    last = m.index + m[0].length;
  }
  pre.append(text.slice(last));
  return pre;
}

export function pivots(ev) {
  const links = [];
  const add = (label, page, params) => links.push(h("li", {}, h("a", { href: href(page, params) }, label)));
  if (ev.conversation_id) add("this conversation's timeline", "timeline", { by: "conversation_id", id: ev.conversation_id });
  if (ev.session_id) add("this session's timeline", "timeline", { by: "session_id", id: ev.session_id });
  if (ev.trace_id) add("this trace's timeline", "timeline", { by: "trace_id", id: ev.trace_id });
  if (ev.user) add(`events of user ${ev.user}`, "search", { q: term("user", ev.user) });
  if (ev.server) add(`events of server ${ev.server}`, "search", { q: term("server", ev.server) });
  if (ev.tool) add(`calls of tool ${ev.tool}`, "search", { q: term("tool", ev.tool) });
  return h("ul", { class: "pivots" }, links);
}

export function findingList(list) {
  if (!list.length) return h("p", { class: "muted" }, "No finding cites this event.");
  return h(
    "ul", { class: "findings" },
    list.map((f) => h("li", {},
      severityBadge(f.severity), " ",
      h("a", { href: href("alerts", { rule: f.rule }) }, f.title), " ",
      h("code", {}, f.rule),
      h("div", { class: "muted" }, f.explanation),
      f.event_ids.length > 1 ? h("div", { class: "muted" }, `${f.event_ids.length} events make the case`) : null)),
  );
}

/// Fills `panel` with the event `id` (`known`: the event if the caller has it already).
export async function showDetail(panel, id, known, onClose) {
  const close = h("button", { type: "button", class: "close", "aria-label": "close the detail", onclick: onClose }, "×");
  clear(panel, h("div", { class: "detail-head" }, h("h2", {}, "Event"), close), h("p", { class: "muted" }, "loading…"));
  panel.dataset.event = id;
  try {
    const [ev, f] = await Promise.all([
      known ? Promise.resolve(known) : get(`/api/v1/events/${encodeURIComponent(id)}`),
      get("/api/v1/findings", { event_id: id, limit: 100 }),
    ]);
    if (panel.dataset.event !== id) return;
    const redactions = ev.redactions || [];
    clear(
      panel,
      h("div", { class: "detail-head" }, h("h2", {}, `${ev.server ? ev.server + " / " : ""}${ev.tool}`), close),
      h("p", { class: "muted" }, fmtTime(ev.timestamp), " · ", h("code", { class: "event-id" }, ev.event_id)),
      h("h3", {}, "Findings"), findingList(f.findings),
      h("h3", {}, "Pivot"), pivots(ev),
      redactions.length
        ? [h("h3", {}, "Redactions"), h("ul", {}, redactions.map((r) => h("li", {}, h("code", {}, r.kind), ` at ${r.path} ×${r.count}`)))]
        : null,
      h("h3", {}, "Stored event"), prettyJson(ev),
    );
  } catch (err) {
    if (panel.dataset.event === id) clear(panel, h("div", { class: "detail-head" }, h("h2", {}, "Event"), close), errorBox(err));
  }
}
