"""Dashboard figures in headless chromium (not a test): first contentful paint of the search
page, and the time from running a query to its histogram and first page of rows drawn.

    figures.py http://127.0.0.1:8080 [runs]

Prints one line per figure with the median, min and max over the runs."""

import statistics
import sys
import urllib.parse

from playwright.sync_api import sync_playwright

BASE = sys.argv[1].rstrip("/")
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 20

# Time from the query's start (performance mark set by search.js) to the frame after the
# rows and bars are in the DOM: the page has painted them by then.
DRAWN = """async () => {
  await new Promise((ok) => {
    const check = () => document.querySelector("main").dataset.state === "ready" ? ok() : setTimeout(check, 2);
    check();
  });
  await new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)));
  const start = performance.getEntriesByName("mcp-audit:query-start").pop().startTime;
  return performance.now() - start;
}"""


def summary(name, values):
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
    print(f"{name}: median {statistics.median(values):.0f} ms, p90 {p90:.0f}, min {values[0]:.0f}, "
          f"max {values[-1]:.0f} ({len(values)} runs)")


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        fcp = []
        for _ in range(RUNS):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(f"{BASE}/#/search")
            page.wait_for_selector("main[data-state='ready']", timeout=60000)
            fcp.append(page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime"))
            context.close()
        summary("first contentful paint, search page (fresh context each run)", fcp)

        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{BASE}/#/search")
        page.wait_for_selector("main[data-state='ready']", timeout=60000)
        total = page.inner_text("#total")
        users = page.eval_on_selector_all("tbody tr td:nth-child(2)", "tds => tds.map(td => td.innerText)")
        queries = ["", "outcome:error", f'user:"{users[0]}"', "NOT outcome:ok", "duration_ms:>1000", "tool:read_file OR tool:query"]
        drawn = {q: [] for q in queries}
        for i in range(RUNS):
            for q in queries:
                page.fill("#q", q)
                page.evaluate("document.querySelector('main').dataset.state = 'measuring'")
                page.press("#q", "Enter")
                drawn[q].append(page.evaluate(DRAWN))
        print(f"events in the default range (last 24 h): {total}")
        for q in queries:
            summary(f"query redrawn (histogram of 5 outcome series + 100 rows), q={q!r}", drawn[q])
        summary("query redrawn, all queries", [v for vs in drawn.values() for v in vs])
        browser.close()


if __name__ == "__main__":
    main()
