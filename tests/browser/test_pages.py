"""The other pages in a real chromium: the conversation timeline and its pivots, the live
tail, alerts (ack, silence), rules, the overview, and every page loading cleanly."""

import urllib.parse
import uuid
from datetime import datetime, timezone

import pytest

from conftest import goto, wait_js, wait_until

PAGES = ["#/search", "#/search?start=-7d&q=redaction%3A*", "#/timeline", "#/overview", "#/alerts",
         "#/alerts?status=resolved", "#/rules"]


def now():
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def test_event_to_conversation_timeline_and_pivot(page, api):
    hit = api.get("/api/v1/search", q="conversation_id:* AND user:*", start="-7d", limit=1)["hits"][0]
    conv = hit["conversation_id"]
    calls = api.get("/api/v1/search", q=f'conversation_id:"{conv}"', start="-30d", limit=1)["total"]
    goto(page, f"#/search?start=-7d&event={urllib.parse.quote(hit['event_id'])}")
    page.wait_for_selector(f"#detail[data-event='{hit['event_id']}'] .pivots")
    page.click("#detail .pivots a:has-text(\"this conversation's timeline\")")
    wait_js(page, "location.hash.startsWith('#/timeline')")
    page.wait_for_selector("main[data-page='timeline'][data-state='ready'] #timeline")
    ids = page.eval_on_selector_all(".tl-item", "els => els.map(e => e.dataset.id)")
    assert len(ids) == calls
    assert hit["event_id"] in ids
    times = page.eval_on_selector_all(".tl-item .when", "els => els.map(e => e.innerText.split('\\n')[0])")
    assert times == sorted(times), "calls are in time order"
    assert page.locator(".tl-axis circle").count() == calls
    # open a call and pivot to its user
    page.click(f".tl-item[data-id='{hit['event_id']}']")
    page.wait_for_selector(f"#detail[data-event='{hit['event_id']}'] .pivots")
    page.click(f"#detail .pivots a:has-text('events of user {hit['user']}')")
    page.wait_for_selector("main[data-page='search'][data-state='ready']")
    assert page.input_value("#q") == f'user:"{hit["user"]}"'
    users = set(page.eval_on_selector_all("tbody tr td:nth-child(2)", "tds => tds.map(td => td.innerText)"))
    assert users == {hit["user"]}
    assert not page.watch.errors, page.watch.errors


def test_timeline_shows_findings_citing_its_calls(page, api):
    def in_a_conversation(f):
        return api.get(f"/api/v1/events/{urllib.parse.quote(f['event_ids'][-1])}").get("conversation_id")

    finding = next(f for f in api.get("/api/v1/findings", limit=200)["findings"] if in_a_conversation(f))
    goto(page, f"#/timeline?event={urllib.parse.quote(finding['event_ids'][-1])}")
    page.wait_for_selector("main[data-page='timeline'][data-state='ready'] #timeline")
    cited = page.locator(f".tl-item[data-id='{finding['event_ids'][-1]}'] .findings li")
    assert cited.count() >= 1
    assert finding["title"] in cited.first.inner_text()


def test_live_tail_streams_and_pauses_while_scrolled(page, api):
    user = f"tail-{uuid.uuid4().hex[:8]}"
    goto(page, "#/search?start=-7d")
    page.check("#tail-toggle")
    page.wait_for_selector(".tail-status .live")
    assert "tail=1" in page.evaluate("location.hash")

    def event(i):
        return {"event_id": f"{user}-{i}", "timestamp": now(), "method": "tools/call", "server": "tailtest",
                "tool": "echo", "user": user, "outcome": "ok", "duration_ms": i}

    # The tail may connect a moment after the toggle; send until the first event shows.
    sent = [0]

    def first_arrives():
        api.ingest([event(sent[0])])
        sent[0] += 1
        try:
            page.wait_for_selector("tbody tr.fresh", timeout=1000)
            return True
        except Exception:
            return False

    wait_until("the first tailed event", first_arrives, timeout=20, every=0)
    first_row = page.eval_on_selector("tbody tr:first-child", "tr => tr.dataset.id")
    assert first_row.startswith(user)
    fresh_before = page.locator("tbody tr.fresh").count()
    # Scrolled away from the top: new events wait, the status says so.
    page.eval_on_selector("#results", "el => el.scrollTop = 300")
    page.wait_for_selector(".tail-status button")
    api.ingest([event(100), event(101)])
    wait_js(page, "document.querySelector('.tail-status').innerText.includes('2 new')")
    assert page.locator("tbody tr.fresh").count() == fresh_before
    page.click(".tail-status button")
    wait_js(page, f"document.querySelectorAll('tbody tr.fresh').length === {fresh_before + 2}")
    assert page.eval_on_selector("tbody tr:first-child", "tr => tr.dataset.id") == f"{user}-101"
    # Off: no more rows.
    page.uncheck("#tail-toggle")
    api.ingest([event(200)])
    wait_until("the event to be searchable", lambda: api.get("/api/v1/search", q=f'user:"{user}"', limit=1)["total"] >= sent[0] + 3)
    assert page.locator(f"tbody tr[data-id='{user}-200']").count() == 0
    assert not page.watch.errors, page.watch.errors


def test_ack_an_alert_and_silence_a_rule(page, api):
    firing = wait_until("firing alerts", lambda: api.get("/api/v1/alerts", status="firing", limit=200)["alerts"])
    goto(page, "#/alerts?status=firing")
    first = page.locator("#alerts > li").first
    alert_id = first.get_attribute("data-id")
    assert alert_id in {a["id"] for a in firing}
    first.locator("button.ack").click()
    wait_until("the alert to be acknowledged", lambda: api.get(f"/api/v1/alerts/{alert_id}")["alert"]["status"] == "acknowledged")
    page.wait_for_selector(f"#alerts > li[data-id='{alert_id}']", state="detached")
    acked = api.get(f"/api/v1/alerts/{alert_id}")["alert"]
    assert acked["acknowledged_by"] == "dashboard"

    target = page.locator("#alerts > li").first
    rule = target.get_attribute("data-rule")
    target.locator("button.silence").click()
    page.wait_for_selector("#silence-dialog[open]")
    assert page.input_value("#sil-rule") == rule
    page.select_option("#sil-duration", "1h")
    page.fill("#sil-by", "browser-test")
    page.fill("#sil-comment", "noisy in the test")
    page.click("#silence-dialog button.primary")
    page.wait_for_selector("#silence-dialog", state="hidden")
    silences = api.get("/api/v1/silences")["silences"]
    mine = [s for s in silences if s["created_by"] == "browser-test"]
    assert mine and mine[0]["matchers"] == [{"name": "rule", "value": rule}] or mine[0]["matchers"][0]["value"] == rule
    page.wait_for_selector(f"#silences li:has-text('rule={rule}')")
    # the acknowledged list now holds the alert
    goto(page, "#/alerts?status=acknowledged")
    assert page.locator(f"#alerts > li[data-id='{alert_id}']").count() == 1
    assert not page.watch.errors, page.watch.errors


def test_alert_evidence_links_open_events_and_conversations(page, api):
    alert = wait_until("an alert", lambda: [
        a for a in api.get("/api/v1/alerts", limit=200)["alerts"]
        if api.get(f"/api/v1/events/{urllib.parse.quote(a['event_ids'][-1])}").get("conversation_id")])[0]
    status = alert["status"]
    goto(page, f"#/alerts?status={status}")
    item = page.locator(f"#alerts > li[data-id='{alert['id']}']")
    event_id = alert["event_ids"][-1]
    item.locator(f"a[aria-label='conversation of {event_id}']").click()
    page.wait_for_selector("main[data-page='timeline'][data-state='ready'] #timeline")
    assert page.locator(f".tl-item[data-id='{event_id}']").count() == 1


def test_rules_page_lists_every_rule_with_state(page, api):
    rules = api.get("/api/v1/rules")
    goto(page, "#/rules")
    assert page.locator("#rules tbody tr").count() == len(rules["rules"])
    fired = next(r for r in rules["rules"] if r["findings"])
    row = page.locator(f"#rule-{fired['id']}")
    assert "enabled" in row.inner_text()
    assert str(fired["findings"]) in row.inner_text().replace(",", "")


def test_overview_counts_match_the_api(page, api):
    goto(page, "#/overview")
    tools = api.get("/api/v1/terms", field="tool", size=10)["terms"]
    assert page.locator("#card-tool li").first.inner_text().split("\n")[0] == tools[0]["value"]
    high_and_up = api.get("/api/v1/findings", severity="high", since="-24h", limit=1)["total"]
    crit = api.get("/api/v1/findings", severity="critical", since="-24h", limit=1)["total"]
    assert page.inner_text("[data-severity='high']").replace(",", "") == str(high_and_up - crit)
    assert page.locator("#rate svg .bars g").count() > 0


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_loads_cleanly(browser, base_url, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    from conftest import Watch
    watch = Watch(page, base_url)
    for route in PAGES:
        goto(page, route)
        assert page.get_attribute("main", "data-state") == "ready", route
        assert page.locator(".error").count() == 0, route
        # nothing wider than the viewport at either width
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{route} overflows by {overflow}px at {width}px"
    assert not watch.errors, watch.errors
    assert not watch.outside, watch.outside
    context.close()


CONTRAST = """(selectors) => {
  const rgb = (c) => { const m = c.match(/[\\d.]+/g).map(Number); return { r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1 }; };
  const lum = ({ r, g, b }) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.a > 0.5) return c;
    }
    return rgb(getComputedStyle(document.body).backgroundColor);
  };
  const out = [];
  for (const sel of selectors) {
    for (const el of [...document.querySelectorAll(sel)].slice(0, 5)) {
      if (!el.offsetParent || !el.textContent.trim()) continue;
      const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
      out.push([sel, el.textContent.trim().slice(0, 30), (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]);
    }
  }
  return out;
}"""

TEXT = ["body", ".muted", "a", "nav a", "nav a[aria-current='page']", "th", ".out-ok", ".out-error", ".out-denied",
        ".out-consent_denied", ".out-timeout", ".badge", ".sev", ".axis", "button", "button[aria-pressed='true']",
        "mark.redaction", ".hint", "code", ".bl-count"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast_meets_wcag_aa(browser, base_url, scheme):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    checked = []
    for route in ["#/search?start=-7d&q=redaction%3A*", "#/overview", "#/alerts", "#/rules"]:
        goto(page, route)
        if route.startswith("#/search"):
            page.click("tbody tr:first-child td.tool")
            page.wait_for_selector("#detail mark.redaction")
        checked += page.evaluate(CONTRAST, TEXT)
    context.close()
    assert len(checked) > 40
    low = [(sel, text, round(ratio, 2)) for sel, text, ratio in checked if ratio < 4.5]
    assert not low, f"text under 4.5:1 in {scheme} mode: {low}"
