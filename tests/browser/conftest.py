"""Fixtures for the dashboard's browser tests: a headless Debian chromium driven by Playwright,
pointed at a collector started by run.sh (its URL in MCP_AUDIT_URL), and a small HTTP client
for setting up and checking state through the API itself."""

import json
import os
import time
import urllib.parse
import urllib.request
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

BASE = os.environ.get("MCP_AUDIT_URL", "http://127.0.0.1:8080").rstrip("/")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class Api:
    """The collector's HTTP API, as the tests use it to prepare and verify."""

    def __init__(self, base):
        self.base = base

    def get(self, path, **params):
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        with urllib.request.urlopen(f"{self.base}{path}{'?' + query if query else ''}", timeout=30) as r:
            return json.load(r)

    def post(self, path, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base}{path}", data=data, method="POST",
                                     headers={"Content-Type": content_type})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def ingest(self, events):
        body = "".join(json.dumps(e) + "\n" for e in events).encode()
        answer = self.post("/api/v1/ingest", body, "application/x-ndjson")
        assert not answer["rejected"], answer
        return answer["accepted"]


def wait_until(what, check, timeout=30.0, every=0.2):
    """Polls check() until it returns something truthy; fails naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def wait_js(page, expression, timeout=10.0):
    """Polls a JavaScript expression until it is truthy. Playwright's wait_for_function
    compiles its predicate with eval, which the dashboard's CSP (no 'unsafe-eval') forbids;
    page.evaluate runs through the debugger protocol and is not affected."""
    return wait_until(expression, lambda: page.evaluate(expression), timeout, 0.05)


@pytest.fixture(scope="session")
def api():
    return Api(BASE)


@pytest.fixture(scope="session")
def base_url():
    return BASE


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Watch:
    """Console errors, uncaught exceptions and requests to anything but the collector."""

    def __init__(self, page, base):
        self.errors = []
        self.outside = []
        host = urlsplit(base).netloc
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

        def on_request(req):
            u = urlsplit(req.url)
            if u.scheme in ("data", "blob", "about"):
                return
            if u.hostname != "127.0.0.1" or u.netloc != host:
                self.outside.append(req.url)

        page.on("request", on_request)


@pytest.fixture
def page(browser, request):
    width = getattr(request, "param", 1280)
    context = browser.new_context(viewport={"width": width, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15000)
    pg.watch = Watch(pg, BASE)
    yield pg
    context.close()


def goto(page, route):
    """Opens a dashboard route and waits until its page says it is ready (or failed)."""
    if page.url.startswith(BASE):
        # Same document: clear the old page's state so the wait below sees the new one.
        page.evaluate("document.querySelector('main').dataset.state = 'navigating'")
    page.goto(f"{BASE}/{route}")
    page.wait_for_selector("main[data-state='ready'], main[data-state='error']")
    return page
