// The search page: query box (syntax help, field and value autocomplete), time range,
// a histogram stacked by outcome with drag-to-zoom, the results table with infinite scroll,
// the live tail, and the event detail panel. Its whole state (q, start, end, event, tail)
// lives in the URL.

import { get, tail } from "./api.js";
import { stackedHistogram, legend } from "./chart.js";
import { showDetail } from "./detail.js";
import { fields, outcomes, findingsIndex } from "./registry.js";
import {
  h, clear, href, fmtTime, fmtRowTime, fmtDuration, fmtCount, replaceRoute, toMs, errorBox, empty, outcomeBadge,
} from "./dom.js";

const PRESETS = [
  ["15m", "-15m"],
  ["1h", "-1h"],
  ["24h", "-24h"],
  ["7d", "-7d"],
];
const INTERVALS = [
  ["10s", 10], ["30s", 30], ["1m", 60], ["5m", 300], ["10m", 600], ["15m", 900], ["30m", 1800],
  ["1h", 3600], ["3h", 10800], ["6h", 21600], ["12h", 43200], ["1d", 86400],
];
const PAGE = 100;
const TAIL_BUFFER = 1000;

/// A bucket width giving 40 to 100 bars over the range.
export function intervalFor(spanMs) {
  for (const [name, secs] of INTERVALS) if (spanMs / (secs * 1000) <= 100) return [name, secs];
  return ["1w", 604800];
}

/// The query restricted to one more condition, keeping the user's precedence.
export function andQuery(q, extra) {
  return q && q.trim() && q.trim() !== "*" ? `(${q}) AND ${extra}` : extra;
}

export function mount(root, params) {
  const state = {
    q: params.get("q") || "",
    start: params.get("start") || "-24h",
    end: params.get("end") || "",
    event: params.get("event") || "",
    tail: params.get("tail") === "1",
  };
  let run = 0; // generation: answers of an older query are dropped
  let cursor = null;
  let loadingMore = false;
  let rows = [];
  let selected = -1;
  let findings = new Map();
  let tailAbort = null;
  let tailBuffer = [];

  const save = () =>
    replaceRoute("search", {
      q: state.q, start: state.start === "-24h" ? "" : state.start, end: state.end,
      event: state.event, tail: state.tail ? "1" : "",
    });

  // --- the form ---
  const input = h("input", {
    id: "q", type: "text", name: "q", autocomplete: "off", spellcheck: "false",
    placeholder: "tool:delete_file AND NOT outcome:ok   (press / to focus)",
    "aria-describedby": "q-error q-help-summary", role: "combobox", "aria-autocomplete": "list",
    "aria-expanded": "false", "aria-controls": "q-suggest",
  });
  input.value = state.q;
  const suggest = h("ul", { id: "q-suggest", role: "listbox", class: "suggest", hidden: true, "aria-label": "suggestions" });
  const qError = h("div", { id: "q-error", class: "field-error", "aria-live": "polite" });
  const help = h(
    "details", { class: "help" },
    h("summary", { id: "q-help-summary" }, "Query syntax"),
    h("pre", {},
      "tool:delete_file AND user:alice     exact field values (case-sensitive)\n" +
      "outcome:(error OR timeout)          a field applied to a group\n" +
      "NOT tool:x   -tool:x   a OR b       boolean logic; adjacent terms are ANDed\n" +
      "duration_ms:>1000  result_bytes:[100 TO 500]   numbers and ranges\n" +
      "arguments.path:\"/etc/passwd\"        words inside one argument\n" +
      "labels.env:prod  destructive:true  redaction:github_token  user:*\n" +
      "passwd  \"permission denied\"         free text over arguments, result, error\n" +
      "Fields: start typing for suggestions; ↑/↓ choose, Tab or Enter accept, Esc closes."),
  );
  const presetButtons = PRESETS.map(([label, value]) =>
    h("button", { type: "button", class: "preset", "data-range": value, "aria-pressed": "false", onclick: () => setRange(value, "") }, label),
  );
  const startInput = h("input", { type: "datetime-local", step: "1", id: "range-start", "aria-label": "custom range start" });
  const endInput = h("input", { type: "datetime-local", step: "1", id: "range-end", "aria-label": "custom range end" });
  const rangeError = h("div", { class: "field-error", "aria-live": "polite" });
  const tailToggle = h("input", { type: "checkbox", id: "tail-toggle" });
  tailToggle.checked = state.tail;
  const form = h(
    "form", { class: "searchbar", role: "search", onsubmit: (e) => { e.preventDefault(); closeSuggest(); state.q = input.value; state.event = ""; runQuery(); } },
    h("div", { class: "qwrap" }, h("label", { for: "q", class: "sr-only" }, "Query"), input, suggest, qError),
    h("button", { type: "submit", class: "primary" }, "Search"),
  );
  const rangeBar = h(
    "div", { class: "rangebar" },
    h("span", { class: "group", role: "group", "aria-label": "time range presets" }, presetButtons),
    h("span", { class: "group custom" },
      h("label", { for: "range-start" }, "from"), startInput,
      h("label", { for: "range-end" }, "to"), endInput,
      h("button", { type: "button", onclick: applyCustom }, "Apply")),
    h("label", { class: "tail", for: "tail-toggle" }, tailToggle, " Live tail"),
    rangeError,
  );
  const summary = h("div", { class: "summary", "aria-live": "polite" });
  const chart = h("div", { class: "chart", id: "histogram" });
  const chartLegend = h("div", {});
  const tbody = h("tbody", {});
  const tailStatus = h("div", { class: "tail-status", hidden: true, "aria-live": "polite" });
  const sentinel = h("div", { class: "sentinel" });
  const tableWrap = h(
    "div", { class: "results", id: "results", tabindex: "-1" },
    h("table", { class: "events" },
      h("caption", { class: "sr-only" }, "matching events, newest first"),
      h("thead", {}, h("tr", {}, ["time", "user", "client", "server", "tool", "outcome", "duration", ""].map((c) => h("th", { scope: "col" }, c)))),
      tbody),
    sentinel,
  );
  const status = h("div", { class: "status" });
  const detail = h("aside", { class: "detail", id: "detail", hidden: true, "aria-label": "event detail" });
  clear(root,
    h("h1", { class: "sr-only" }, "Search"),
    form, help, rangeBar,
    h("section", { class: "hist", "aria-label": "histogram" }, summary, chart, chartLegend),
    h("div", { class: "split" }, h("section", { class: "list", "aria-label": "results" }, tailStatus, tableWrap, status), detail),
  );

  function markPreset() {
    for (const b of presetButtons) b.setAttribute("aria-pressed", String(!state.end && b.dataset.range === state.start));
    const toLocal = (ms) => {
      const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
      return d.toISOString().slice(0, 19);
    };
    startInput.value = toLocal(toMs(state.start, Date.now() - 86400e3));
    endInput.value = toLocal(toMs(state.end, Date.now()));
  }

  function setRange(start, end) {
    state.start = start;
    state.end = end;
    runQuery();
  }

  function applyCustom() {
    const a = Date.parse(startInput.value);
    const b = Date.parse(endInput.value);
    if (Number.isNaN(a) || Number.isNaN(b) || a >= b) {
      rangeError.textContent = "the custom range needs a start before its end";
      return;
    }
    setRange(new Date(a).toISOString(), new Date(b).toISOString());
  }

  // --- autocomplete ---
  let suggestItems = [];
  let active = -1;
  let suggestGen = 0;

  function tokenAtCaret() {
    const pos = input.selectionStart ?? input.value.length;
    const before = input.value.slice(0, pos);
    const m = /[^\s()]*$/.exec(before);
    const startAt = pos - m[0].length;
    return { text: m[0].replace(/^-/, ""), from: startAt + (m[0].startsWith("-") ? 1 : 0), to: pos };
  }

  async function updateSuggest() {
    const gen = ++suggestGen;
    const tok = tokenAtCaret();
    const all = await fields();
    let items = [];
    const colon = tok.text.indexOf(":");
    if (colon < 0) {
      if (!tok.text || /^(AND|OR|NOT)$/.test(tok.text)) return closeSuggest();
      items = all
        .filter((f) => f.name.startsWith(tok.text.toLowerCase()) && f.name !== tok.text)
        .map((f) => ({ label: f.name + ":", hint: f.description, insert: f.name + ":" }));
    } else {
      const name = tok.text.slice(0, colon);
      const prefix = tok.text.slice(colon + 1).replace(/^"/, "");
      const f = all.find((x) => x.name === name);
      if (!f) return closeSuggest();
      let values = [];
      if (f.values) values = f.values.map((v) => ({ value: v }));
      else if (f.aggregatable) {
        try {
          const t = await get("/api/v1/terms", { field: name, start: state.start, end: state.end, size: 200 });
          values = t.terms;
        } catch {
          values = [];
        }
      }
      if (gen !== suggestGen) return;
      items = values
        .filter((v) => v.value.startsWith(prefix) && v.value !== prefix)
        .slice(0, 12)
        .map((v) => ({
          label: v.value,
          hint: v.count ? fmtCount(v.count) : "",
          insert: `${name}:${/^[A-Za-z0-9_.\-/@]+$/.test(v.value) ? v.value : JSON.stringify(v.value)}`,
        }));
    }
    if (gen !== suggestGen) return;
    suggestItems = items.slice(0, 12);
    active = -1;
    if (!suggestItems.length) return closeSuggest();
    clear(suggest, suggestItems.map((it, i) =>
      h("li", { role: "option", id: `sug-${i}`, "aria-selected": "false", onmousedown: (e) => { e.preventDefault(); accept(i); } },
        h("span", { class: "sug-label" }, it.label), h("span", { class: "sug-hint" }, it.hint))));
    suggest.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  function closeSuggest() {
    suggestGen++;
    suggest.hidden = true;
    suggestItems = [];
    active = -1;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function accept(i) {
    const it = suggestItems[i];
    const tok = tokenAtCaret();
    const v = input.value;
    const tail = it.insert.endsWith(":") ? "" : " ";
    input.value = v.slice(0, tok.from) + it.insert + tail + v.slice(tok.to);
    const caret = tok.from + it.insert.length + tail.length;
    input.setSelectionRange(caret, caret);
    closeSuggest();
    if (it.insert.endsWith(":")) updateSuggest();
  }

  function moveActive(d) {
    if (!suggestItems.length) return;
    active = (active + d + suggestItems.length) % suggestItems.length;
    [...suggest.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === active)));
    input.setAttribute("aria-activedescendant", `sug-${active}`);
  }

  input.addEventListener("input", () => updateSuggest());
  input.addEventListener("blur", () => setTimeout(closeSuggest, 0));
  input.addEventListener("keydown", (e) => {
    if (suggest.hidden) {
      if (e.key === "Escape") input.blur();
      return;
    }
    if (e.key === "ArrowDown") { e.preventDefault(); moveActive(1); }
    else if (e.key === "ArrowUp") { e.preventDefault(); moveActive(-1); }
    else if (e.key === "Escape") { e.preventDefault(); closeSuggest(); }
    else if ((e.key === "Tab" || e.key === "Enter") && active >= 0) { e.preventDefault(); accept(active); }
    else if (e.key === "Tab" && suggestItems.length) { e.preventDefault(); accept(0); }
  });

  // --- the query ---
  function showQueryError(err) {
    if (err.param === "q") {
      const m = /position (\d+)/.exec(err.detail);
      const where = m ? h("pre", { class: "caret" }, state.q + "\n" + " ".repeat(Math.min(Number(m[1]), state.q.length)) + "^") : null;
      clear(qError, h("span", { role: "alert" }, err.detail), where);
      input.setAttribute("aria-invalid", "true");
    } else if (err.param === "start" || err.param === "end") {
      rangeError.textContent = err.detail;
    } else {
      clear(status, errorBox(err));
    }
  }

  async function runQuery() {
    const gen = ++run;
    // Timed from here to the rows and bars in the DOM (`mcp-audit:query`, for the README figure).
    performance.mark("mcp-audit:query-start");
    save();
    markPreset();
    stopTail();
    clear(qError);
    rangeError.textContent = "";
    input.removeAttribute("aria-invalid");
    clear(status);
    root.dataset.state = "loading";
    const startMs = toMs(state.start, Date.now() - 86400e3);
    const endMs = toMs(state.end, Date.now() + 3600e3);
    const [interval, intervalSecs] = intervalFor(Math.max(endMs - startMs, 1000));
    const outs = await outcomes();
    const range = { start: state.start, end: state.end };
    try {
      const [page, fi, ...hists] = await Promise.all([
        get("/api/v1/search", { q: state.q, ...range, limit: PAGE }),
        // Badges are extra: a failing findings call must not hide the search.
        findingsIndex(range).catch(() => new Map()),
        ...outs.map((o) => get("/api/v1/histogram", { q: andQuery(state.q, `outcome:${o}`), ...range, interval })),
      ]);
      if (gen !== run) return;
      findings = fi;
      const series = outs.map((o, i) => ({ name: o, cls: `c-${o}`, buckets: hists[i].buckets }));
      stackedHistogram(chart, {
        series, intervalSecs: hists[0]?.interval_secs || intervalSecs, label: "matching events over time, stacked by outcome",
        onZoom: (a, b) => setRange(new Date(a).toISOString(), new Date(b).toISOString()),
      });
      clear(chartLegend, legend(series));
      clear(summary, page.total_relation === "gte" ? "at least " : "", h("strong", { id: "total" }, fmtCount(page.total)), ` events  ·  ${page.took_ms} ms  ·  `,
        h("span", { class: "muted" }, `${interval} bars; drag across the chart to zoom`));
      rows = [];
      selected = -1;
      tbody.replaceChildren();
      tableWrap.scrollTop = 0;
      addRows(page.hits);
      cursor = page.next_cursor;
      if (!page.hits.length) clear(status, empty("No events match this query in this range. Widen the range or loosen the query."));
      performance.measure("mcp-audit:query", "mcp-audit:query-start");
      root.dataset.state = "ready";
      if (state.event) openEvent(state.event, false);
      if (state.tail) startTail();
    } catch (err) {
      if (gen !== run) return;
      root.dataset.state = "error";
      chart.replaceChildren();
      chartLegend.replaceChildren();
      summary.replaceChildren();
      tbody.replaceChildren();
      rows = [];
      cursor = null;
      showQueryError(err);
    }
  }

  async function loadMore() {
    if (!cursor || loadingMore) return;
    loadingMore = true;
    const gen = run;
    try {
      const page = await get("/api/v1/search", { q: state.q, start: state.start, end: state.end, limit: PAGE, cursor });
      if (gen !== run) return;
      addRows(page.hits);
      cursor = page.next_cursor;
    } catch (err) {
      if (gen === run) clear(status, errorBox(err));
    } finally {
      loadingMore = false;
    }
  }

  function rowFor(ev, fresh) {
    const cited = findings.get(ev.event_id) || [];
    const red = (ev.redactions || []).reduce((n, r) => n + r.count, 0);
    const tr = h(
      "tr", { tabindex: "-1", class: fresh ? "fresh" : "", dataset: { id: ev.event_id }, onclick: () => select(rows.indexOf(ev)) },
      h("td", { class: "time" }, h("a", {
        href: href("search", { q: state.q, start: state.start, end: state.end, event: ev.event_id }),
        "aria-label": `open event at ${fmtTime(ev.timestamp)}`,
        onclick: (e) => e.preventDefault(),
      }, fmtRowTime(ev.timestamp))),
      h("td", {}, ev.user || ""), h("td", {}, ev.client || ""), h("td", {}, ev.server || ""),
      h("td", { class: "tool" }, ev.tool || h("span", { class: "muted" }, ev.method)),
      h("td", {}, outcomeBadge(ev.outcome)),
      h("td", { class: "num" }, fmtDuration(ev.duration_ms)),
      h("td", { class: "badges" },
        red ? h("span", { class: "badge redacted", title: (ev.redactions || []).map((r) => `${r.kind} at ${r.path}`).join(", ") }, `${red} redacted`) : null,
        cited.length ? h("span", { class: `badge finding sev-${cited[0].severity}`, title: cited.map((f) => f.title).join("; ") }, `${cited.length} finding${cited.length > 1 ? "s" : ""}`) : null),
    );
    return tr;
  }

  function addRows(hits) {
    const frag = document.createDocumentFragment();
    for (const ev of hits) {
      rows.push(ev);
      frag.append(rowFor(ev, false));
    }
    tbody.append(frag);
  }

  function select(i, focus = true) {
    if (i < 0 || i >= rows.length) return;
    const trs = tbody.children;
    if (selected >= 0 && trs[selected]) trs[selected].removeAttribute("aria-selected");
    selected = i;
    const tr = trs[i];
    tr.setAttribute("aria-selected", "true");
    if (focus) tr.focus({ preventScroll: true });
    tr.scrollIntoView({ block: "nearest" });
    if (i >= rows.length - 5) loadMore();
    openEvent(rows[i].event_id, true, rows[i]);
  }

  async function openEvent(id, push, known) {
    state.event = id;
    save();
    detail.hidden = false;
    await showDetail(detail, id, known, () => {
      state.event = "";
      detail.hidden = true;
      save();
      if (selected >= 0) tbody.children[selected]?.focus();
    });
  }

  // Infinite scroll: a sentinel below the table, watched inside the scrolling box.
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadMore();
  }, { root: tableWrap, rootMargin: "400px" });
  observer.observe(sentinel);

  // --- live tail ---
  function tailPaused() {
    return tableWrap.scrollTop > 4;
  }

  function prependEvents(events) {
    const frag = document.createDocumentFragment();
    for (const ev of events) frag.prepend(rowFor(ev, true));
    tbody.prepend(frag);
    rows.unshift(...events.slice().reverse());
    if (selected >= 0) selected += events.length;
    const extra = tbody.children.length - 2000;
    for (let k = 0; k < extra; k++) { tbody.lastElementChild.remove(); rows.pop(); }
  }

  function showTailStatus() {
    tailStatus.hidden = !state.tail;
    if (!state.tail) return;
    clear(tailStatus, tailBuffer.length || tailPaused()
      ? h("span", {}, `Live tail paused while you scroll: ${fmtCount(tailBuffer.length)} new. `,
          h("button", { type: "button", onclick: () => { tableWrap.scrollTop = 0; flushTail(); } }, "Show them"))
      : h("span", { class: "live" }, "● Live: new matching events appear at the top"));
  }

  function flushTail() {
    if (!tailBuffer.length) return showTailStatus();
    prependEvents(tailBuffer);
    tailBuffer = [];
    showTailStatus();
  }

  tableWrap.addEventListener("scroll", () => {
    if (!state.tail) return;
    if (!tailPaused()) flushTail();
    else showTailStatus();
  });

  function startTail() {
    stopTail();
    const ctl = new AbortController();
    tailAbort = ctl;
    showTailStatus();
    tail(state.q, ctl.signal, (ev) => {
      if (tailPaused()) {
        tailBuffer.push(ev);
        if (tailBuffer.length > TAIL_BUFFER) tailBuffer.shift();
        showTailStatus();
      } else {
        prependEvents([ev]);
        clear(status);
      }
    }, (n) => clear(status, h("div", { class: "warn" }, `the tail fell behind and skipped ${fmtCount(n)} events`)))
      .catch((err) => {
        if (ctl.signal.aborted) return;
        if (err.param === "q") showQueryError(err);
        else clear(status, errorBox(err, " (live tail stopped)"));
      });
  }

  function stopTail() {
    if (tailAbort) tailAbort.abort();
    tailAbort = null;
    tailBuffer = [];
    tailStatus.hidden = true;
  }

  tailToggle.addEventListener("change", () => {
    state.tail = tailToggle.checked;
    save();
    if (state.tail) startTail();
    else stopTail();
  });

  runQuery();

  return {
    focusSearch: () => { input.focus(); input.select(); },
    move: (d) => select(Math.max(0, Math.min(rows.length - 1, selected + d))),
    unmount: () => { stopTail(); observer.disconnect(); run++; },
  };
}
