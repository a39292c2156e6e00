"""Screenshots of each page for the README (not a test), taken from a collector running with
--demo data:  screenshots.py http://127.0.0.1:8080 docs/screenshots"""

import json
import os
import sys
import urllib.parse
import urllib.request

from playwright.sync_api import sync_playwright

BASE = sys.argv[1].rstrip("/")
OUT = sys.argv[2]


def api(path):
    with urllib.request.urlopen(BASE + path, timeout=30) as r:
        return json.load(r)


def ready(page, route):
    page.goto(f"{BASE}/{route}")
    page.wait_for_selector("main[data-state='ready']", timeout=30000)


def main():
    os.makedirs(OUT, exist_ok=True)
    q = urllib.parse.quote
    redacted = api("/api/v1/search?q=" + q("redaction:* AND conversation_id:*") + "&start=-7d&limit=1")["hits"][0]
    # The finding whose conversation is longest (among the newest 40), for a telling timeline.
    best = (0, None)
    for f in api("/api/v1/findings?severity=medium&limit=60")["findings"]:
        conv = api("/api/v1/events/" + q(f["event_ids"][-1])).get("conversation_id")
        if conv and len(f["event_ids"]) > 1:
            calls = api("/api/v1/search?start=-30d&limit=1&q=" + q(f'conversation_id:"{conv}"'))["total"]
            if calls <= 14:
                best = max(best, (calls, f), key=lambda x: x[0])
    finding = best[1]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for scheme in ("light", "dark"):
            context = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme=scheme)
            page = context.new_page()
            suffix = "" if scheme == "light" else "-dark"
            ready(page, f"#/search?start=-7d&q={q('redaction:*')}&event={q(redacted['event_id'])}")
            page.wait_for_selector("#detail pre.json")
            page.eval_on_selector("#detail mark.redaction", """m => {
                const d = document.getElementById("detail");
                d.scrollTop += m.getBoundingClientRect().top - d.getBoundingClientRect().top - 160;
            }""")
            page.screenshot(path=f"{OUT}/search{suffix}.png")
            if scheme == "dark":
                context.close()
                continue
            ready(page, f"#/timeline?event={q(finding['event_ids'][-1])}")
            page.click(f".tl-item[data-id='{finding['event_ids'][-1]}']")
            page.wait_for_selector("#detail pre.json")
            page.screenshot(path=f"{OUT}/timeline.png")
            ready(page, "#/overview")
            page.screenshot(path=f"{OUT}/overview.png")
            ready(page, "#/alerts?status=firing")
            page.screenshot(path=f"{OUT}/alerts.png")
            ready(page, "#/rules")
            page.screenshot(path=f"{OUT}/rules.png")
            context.close()
        context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="light")
        page = context.new_page()
        ready(page, "#/search?q=" + q("outcome:error"))
        page.screenshot(path=f"{OUT}/search-narrow.png")
        context.close()
        browser.close()


if __name__ == "__main__":
    main()
