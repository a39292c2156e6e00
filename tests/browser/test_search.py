"""The search page in a real chromium: query, histogram, rows, errors, autocomplete,
event detail, and keyboard use."""

import urllib.parse

from conftest import goto, wait_js, wait_until


def bar_total(page):
    return page.evaluate(
        "[...document.querySelectorAll('svg.histogram .bars g')].reduce((n, g) => n + Number(g.dataset.count), 0)")


def test_query_draws_histogram_and_rows(page, api):
    goto(page, "#/search")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("outcome:error")
    page.keyboard.press("Escape")  # close the suggestions, keep focus
    page.focus("#q")
    page.keyboard.press("Enter")
    wait_js(page, "location.hash.includes('q=outcome%3Aerror')")
    page.wait_for_selector("main[data-state='ready']")
    expected = api.get("/api/v1/search", q="outcome:error", limit=1)["total"]
    assert expected > 0, "the demo data has errors"
    assert page.inner_text("#total").replace(",", "") == str(expected)
    # Every bar is the error stack and the bars add up to the total.
    classes = page.eval_on_selector_all("svg.histogram .bars rect", "rs => rs.map(r => r.getAttribute('class'))")
    assert classes and set(classes) == {"bar c-error"}
    assert bar_total(page) == expected
    outcomes = page.eval_on_selector_all("tbody tr td:nth-child(6)", "tds => tds.map(td => td.innerText)")
    assert len(outcomes) == min(100, expected)
    assert set(outcomes) == {"error"}
    assert not page.watch.errors, page.watch.errors


def test_histogram_stacks_outcomes_and_zooms(page, api):
    goto(page, "#/search?start=-7d")
    total = api.get("/api/v1/search", start="-7d", limit=1)["total"]
    assert bar_total(page) == total
    classes = set(page.eval_on_selector_all("svg.histogram .bars rect", "rs => rs.map(r => r.getAttribute('class'))"))
    assert {"bar c-ok", "bar c-error"} <= classes, classes
    box = page.locator("svg.histogram").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.55, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, y, steps=5)
    page.mouse.up()
    wait_js(page, "location.hash.includes('start=20')")
    page.wait_for_selector("main[data-state='ready']")
    params = urllib.parse.parse_qs(page.evaluate("location.hash").split("?", 1)[1])
    zoomed = api.get("/api/v1/search", start=params["start"][0], end=params["end"][0], limit=1)["total"]
    assert zoomed < total
    assert page.inner_text("#total").replace(",", "") == str(zoomed)


def test_infinite_scroll_loads_the_next_page(page):
    goto(page, "#/search?start=-7d")
    assert page.locator("tbody tr").count() == 100
    page.eval_on_selector("#results", "el => el.scrollTop = el.scrollHeight")
    wait_js(page, "document.querySelectorAll('tbody tr').length >= 200")
    ids = page.eval_on_selector_all("tbody tr", "trs => trs.map(tr => tr.dataset.id)")
    assert len(ids) == len(set(ids)), "a page was loaded twice"


def test_bad_query_shows_the_parser_message_at_the_box(page):
    goto(page, "#/search?q=" + urllib.parse.quote("tool:("))
    page.wait_for_selector("main[data-state='error']")
    message = page.inner_text("#q-error")
    assert "position 6" in message, message
    assert page.get_attribute("#q", "aria-invalid") == "true"
    assert page.locator("tbody tr").count() == 0


def test_autocomplete_fields_then_values(page):
    goto(page, "#/search")
    page.click("#q")
    page.keyboard.type("outc")
    page.wait_for_selector("#q-suggest li >> text=outcome:")
    page.keyboard.press("Tab")
    assert page.input_value("#q") == "outcome:"
    page.wait_for_selector("#q-suggest li >> text=consent_denied")
    page.keyboard.type("err")
    page.wait_for_selector("#q-suggest li >> text=error")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.input_value("#q").strip() == "outcome:error"
    page.keyboard.type("user:")
    # values of an aggregatable field come from /api/v1/terms, most frequent first
    page.wait_for_selector("#q-suggest li")
    assert page.locator("#q-suggest li").count() > 1


def test_event_detail_highlights_redactions_and_findings(page, api):
    hit = api.get("/api/v1/search", q="redaction:*", start="-7d", limit=1)["hits"][0]
    cited = api.get("/api/v1/findings", event_id=hit["event_id"])["findings"]
    goto(page, "#/search?start=-7d&q=" + urllib.parse.quote("redaction:*"))
    page.click("tbody tr:first-child td.tool")
    page.wait_for_selector(f"#detail[data-event='{hit['event_id']}'] pre.json")
    marks = page.eval_on_selector_all("#detail mark.redaction", "ms => ms.map(m => m.innerText)")
    assert marks and all(m.startswith("[REDACTED:") for m in marks)
    assert page.locator("#detail .findings li").count() == len(cited)
    assert "redaction" in page.evaluate("location.hash") and "event=" in page.evaluate("location.hash")
    # j moves to the next row and opens it
    page.keyboard.press("j")
    second = page.eval_on_selector("tbody tr:nth-child(2)", "tr => tr.dataset.id")
    page.wait_for_selector(f"#detail[data-event='{second}'] pre.json")
    assert page.get_attribute("tbody tr:nth-child(2)", "aria-selected") == "true"
    page.keyboard.press("k")
    page.wait_for_selector(f"#detail[data-event='{hit['event_id']}'] pre.json")


def test_shared_link_reopens_the_event(page, api):
    hit = api.get("/api/v1/search", q="outcome:denied", start="-7d", limit=1)["hits"][0]
    goto(page, f"#/search?start=-7d&q=outcome%3Adenied&event={urllib.parse.quote(hit['event_id'])}")
    page.wait_for_selector(f"#detail[data-event='{hit['event_id']}'] pre.json")
    assert page.input_value("#q") == "outcome:denied"


def test_token_prompt_when_the_api_answers_401(page, api):
    # The collector has no HTTP auth yet; a gate in front of it (Playwright routing) answers
    # 401 to requests without the token, as an authenticating collector will.
    token = "test-token-123"
    seen = []

    def gate(route):
        auth = route.request.headers.get("authorization")
        seen.append(auth)
        if auth != f"Bearer {token}":
            route.fulfill(status=401, content_type="application/problem+json", headers={"www-authenticate": "Bearer"},
                          body='{"type":"about:blank","title":"unauthorized","status":401,"detail":"a token is needed"}')
        else:
            route.continue_()

    page.route("**/api/v1/**", gate)

    from conftest import BASE
    page.goto(f"{BASE}/#/search?q=outcome%3Aerror")
    page.wait_for_selector("#token-dialog[open]")
    page.fill("#token-input", token)
    page.click("#token-dialog button.primary")
    page.wait_for_selector("main[data-state='ready']")
    assert page.locator("tbody tr").count() > 0
    assert page.evaluate("sessionStorage.getItem('mcp-audit-token')") == token
    assert f"Bearer {token}" in seen
    # one dialog for all the requests that were refused together
    assert page.locator("#token-dialog[open]").count() == 0
