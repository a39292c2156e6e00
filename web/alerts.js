// The alerts page: firing, acknowledged and resolved alerts with severity, explanation,
// counts and first/last seen; ack, resolve and silence buttons; links to the evidence events
// and their conversations; the alert's findings and webhook deliveries on demand; the
// silences. Route: #/alerts?status=firing&rule=…&severity=…

import { get, post } from "./api.js";
import { h, clear, href, term, fmtTime, fmtCount, errorBox, empty, severityBadge } from "./dom.js";

const STATUSES = ["firing", "acknowledged", "resolved"];
const WHO_KEY = "mcp-audit-who";

export function mount(root, params) {
  const status = STATUSES.includes(params.get("status")) ? params.get("status") : "firing";
  const rule = params.get("rule") || "";
  const severity = params.get("severity") || "";
  let alive = true;
  const tabs = h("nav", { class: "tabs", "aria-label": "alert status" });
  const list = h("div", {}, h("p", { class: "muted" }, "loading…"));
  const silences = h("div", {});
  const notice = h("div", { "aria-live": "polite" });
  const dialog = silenceDialog();
  clear(root,
    h("h1", {}, "Alerts", rule ? [" of rule ", h("code", {}, rule)] : "", severity ? ` (${severity} and above)` : ""),
    tabs, notice, list, h("h2", {}, "Silences"), silences, dialog.el);

  const who = () => localStorage.getItem(WHO_KEY) || "dashboard";

  async function load() {
    root.dataset.state = "loading";
    try {
      const [counts, page, sil] = await Promise.all([
        Promise.all(STATUSES.map((s) => get("/api/v1/alerts", { status: s, rule, severity, limit: 1 }).then((r) => r.total))),
        get("/api/v1/alerts", { status, rule, severity, limit: 200 }),
        get("/api/v1/silences"),
      ]);
      if (!alive) return;
      clear(tabs, STATUSES.map((s, i) =>
        h("a", { href: href("alerts", { status: s, rule, severity }), "aria-current": s === status ? "page" : false }, `${s} (${fmtCount(counts[i])})`)));
      clear(list, page.alerts.length
        ? h("ul", { class: "alert-list", id: "alerts" }, page.alerts.map(alertItem))
        : empty(`No ${status} alerts${rule ? " for this rule" : ""}.`));
      if (page.total > page.alerts.length) list.append(h("p", { class: "muted" }, `the newest ${page.alerts.length} of ${fmtCount(page.total)}`));
      const active = sil.silences.filter((s) => s.active !== false && Date.parse(s.ends_at) > Date.now());
      clear(silences, active.length
        ? h("ul", { id: "silences" }, active.map((s) => h("li", {},
            s.matchers.map((m) => h("code", {}, `${m.name}${m.regex ? "=~" : "="}${m.value}`)), ` until ${fmtTime(s.ends_at)} by ${s.created_by}`,
            s.comment ? h("span", { class: "muted" }, ` — ${s.comment}`) : null)))
        : empty("No active silences."));
      root.dataset.state = "ready";
    } catch (err) {
      if (!alive) return;
      clear(list, errorBox(err));
      root.dataset.state = "error";
    }
  }

  async function act(label, fn) {
    try {
      await fn();
      clear(notice, h("p", { class: "live" }, label));
    } catch (err) {
      clear(notice, errorBox(err));
    }
    load();
  }

  function alertItem(a) {
    const more = h("div", {});
    const evidence = a.event_ids.slice(-5);
    return h("li", { class: "alert", dataset: { id: a.id, rule: a.rule } },
      h("div", { class: "head" },
        severityBadge(a.severity), h("strong", {}, a.title), h("code", {}, a.rule),
        a.group_key ? h("span", { class: "muted" }, a.group_key) : null),
      h("ul", {}, a.explanations.slice(0, 3).map((x) => h("li", {}, x))),
      h("div", { class: "muted" },
        `${fmtCount(a.count)} finding${a.count === 1 ? "" : "s"}`,
        a.suppressed_count ? ` · ${fmtCount(a.suppressed_count)} suppressed` : "",
        a.silenced_count ? ` · ${fmtCount(a.silenced_count)} silenced${a.silenced_by ? " by " + a.silenced_by : ""}` : "",
        ` · first ${fmtTime(a.first_seen)} · last ${fmtTime(a.last_seen)}`,
        a.acknowledged_by ? ` · acknowledged by ${a.acknowledged_by}` : "",
        a.resolved_at ? ` · resolved ${fmtTime(a.resolved_at)}${a.resolved_by ? " by " + a.resolved_by : ""}` : ""),
      h("div", {}, "Evidence: ", evidence.map((id) => [
        h("a", { href: href("search", { q: term("event_id", id), start: "-30d", event: id }) }, id), " (",
        h("a", { href: href("timeline", { event: id }), "aria-label": `conversation of ${id}` }, "conversation"), ") "])),
      h("div", { class: "actions" },
        a.status === "firing" ? h("button", { type: "button", class: "ack", onclick: () => act(`acknowledged ${a.title}`, () => post(`/api/v1/alerts/${a.id}/ack`, { by: who() })) }, "Acknowledge") : null,
        a.status !== "resolved" ? h("button", { type: "button", class: "resolve", onclick: () => act(`resolved ${a.title}`, () => post(`/api/v1/alerts/${a.id}/resolve`, { by: who() })) }, "Resolve") : null,
        h("button", { type: "button", class: "silence", onclick: () => dialog.open(a) }, "Silence rule…"),
        h("button", { type: "button", class: "details", "aria-expanded": "false", onclick: (e) => details(a, more, e.currentTarget) }, "Findings and deliveries"),
        h("a", { href: href("rules", { rule: a.rule }) }, "the rule")),
      more);
  }

  async function details(a, box, button) {
    if (button.getAttribute("aria-expanded") === "true") {
      button.setAttribute("aria-expanded", "false");
      box.replaceChildren();
      return;
    }
    button.setAttribute("aria-expanded", "true");
    clear(box, h("p", { class: "muted" }, "loading…"));
    try {
      const r = await get(`/api/v1/alerts/${a.id}`);
      clear(box,
        h("h3", {}, "Findings"),
        h("ul", {}, r.findings.map((f) => h("li", {}, fmtTime(f.time), " ", f.explanation, " ",
          h("a", { href: href("timeline", { event: f.event_ids[f.event_ids.length - 1] }) }, "timeline")))),
        h("h3", {}, "Deliveries"),
        r.deliveries.length
          ? h("ul", {}, r.deliveries.map((d) => h("li", {}, `${d.kind} to ${d.destination}: ${d.state} after ${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`,
              d.last_error ? h("span", { class: "muted" }, ` — ${d.last_error}`) : null)))
          : h("p", { class: "muted" }, "No webhook deliveries (no webhook configured, or none due yet)."));
    } catch (err) {
      clear(box, errorBox(err));
    }
  }

  function silenceDialog() {
    const ruleField = h("input", { type: "text", id: "sil-rule", readonly: true });
    const duration = h("select", { id: "sil-duration" }, ["1h", "4h", "24h", "7d"].map((d) => h("option", { value: d }, d)));
    const by = h("input", { type: "text", id: "sil-by", required: true, maxlength: "200" });
    const comment = h("input", { type: "text", id: "sil-comment" });
    const err = h("div", { class: "field-error", "aria-live": "polite" });
    const el = h("dialog", { id: "silence-dialog", "aria-labelledby": "sil-title" },
      h("form", { method: "dialog", onsubmit: async (e) => {
        if (e.submitter && e.submitter.value === "cancel") return;
        e.preventDefault();
        localStorage.setItem(WHO_KEY, by.value.trim());
        try {
          await post("/api/v1/silences", {
            matchers: [{ name: "rule", value: ruleField.value }],
            duration: duration.value, created_by: by.value.trim(), comment: comment.value,
          });
          el.close();
          clear(notice, h("p", { class: "live" }, `silenced ${ruleField.value} for ${duration.value}`));
          load();
        } catch (x) {
          clear(err, x.detail || x.message);
        }
      } },
        h("h2", { id: "sil-title" }, "Silence a rule's alerts"),
        h("p", { class: "muted" }, "Silenced findings are still stored and counted; matching alerts send no notifications."),
        h("label", { for: "sil-rule" }, "Rule"), ruleField,
        h("label", { for: "sil-duration" }, "For"), duration,
        h("label", { for: "sil-by" }, "Your name"), by,
        h("label", { for: "sil-comment" }, "Comment"), comment,
        err,
        h("div", { class: "actions" }, h("button", { value: "cancel", formnovalidate: true }, "Cancel"), h("button", { value: "ok", class: "primary" }, "Silence"))));
    return {
      el,
      open(a) {
        ruleField.value = a.rule;
        by.value = who();
        comment.value = "";
        err.replaceChildren();
        el.showModal();
        duration.focus();
      },
    };
  }

  load();
  return { unmount: () => { alive = false; } };
}
