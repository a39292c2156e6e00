// The rules page: every loaded rule with its state (enabled, kind, severity, findings since
// start, last fired, keys held) and the errors of the last load or reload. Read-only: rules
// are files, reloaded by the collector. Route: #/rules?rule=<id> highlights one rule.

import { get } from "./api.js";
import { h, clear, href, fmtTime, fmtCount, errorBox, empty, severityBadge } from "./dom.js";

export function mount(root, params) {
  const focus = params.get("rule") || "";
  let alive = true;
  const body = h("div", {}, h("p", { class: "muted" }, "loading…"));
  clear(root, h("h1", {}, "Rules"), body);

  get("/api/v1/rules")
    .then((r) => {
      if (!alive) return;
      const errors = r.errors.length
        ? h("div", { class: "error", role: "alert", id: "rule-errors" },
            h("strong", {}, "The last load had problems; the running rules are the last good set:"),
            h("ul", {}, r.errors.map((e) => h("li", {}, h("code", {}, e)))))
        : h("p", { class: "muted", id: "rule-errors" }, "The last load had no errors.");
      const rows = r.rules.map((x) =>
        h("tr", { id: `rule-${x.id}`, "aria-selected": x.id === focus ? "true" : false },
          h("td", {}, h("code", {}, x.id), h("div", { class: "muted wrap" }, x.title)),
          h("td", {}, x.enabled ? "enabled" : h("span", { class: "muted" }, "disabled")),
          h("td", {}, severityBadge(x.severity)),
          h("td", {}, x.kind),
          h("td", { class: "num" }, x.findings ? h("a", { href: href("alerts", { rule: x.id, status: "firing" }) }, fmtCount(x.findings)) : "0"),
          h("td", {}, x.last_fired ? fmtTime(x.last_fired) : h("span", { class: "muted" }, "never")),
          h("td", { class: "num" }, fmtCount(x.keys), x.evicted ? h("div", { class: "muted" }, `${fmtCount(x.evicted)} evicted`) : null),
          h("td", { class: "wrap muted" }, x.builtin ? "built-in" : x.origin, x.tags.length ? h("div", {}, x.tags.join(" ")) : null)));
      clear(body,
        h("p", { class: "muted" },
          r.enabled ? "The rule engine is on" : "The rule engine is off",
          r.reloaded_at ? ` · last reload ${fmtTime(r.reloaded_at)}` : "", ` · ${r.rules.length} rules`),
        errors,
        r.rules.length
          ? h("div", { class: "wrap-table" }, h("table", { id: "rules" },
              h("thead", {}, h("tr", {}, ["rule", "state", "severity", "kind", "findings", "last fired", "keys", "origin"].map((c) => h("th", { scope: "col" }, c)))),
              h("tbody", {}, rows)))
          : empty("No rules are loaded."));
      root.dataset.state = "ready";
      if (focus) document.getElementById(`rule-${focus}`)?.scrollIntoView({ block: "center" });
    })
    .catch((err) => {
      if (!alive) return;
      clear(body, errorBox(err));
      root.dataset.state = "error";
    });
  return { unmount: () => { alive = false; } };
}
