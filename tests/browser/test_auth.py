"""The dashboard against a collector that requires credentials (started by run.sh): it asks for
a token, refuses a wrong one, keeps a good one for the tab, and shows that tenant's events."""

import os

import pytest

from conftest import wait_until

SECURE = os.environ.get("MCP_AUDIT_SECURE_URL", "")
READ_TOKEN = os.environ.get("MCP_AUDIT_READ_TOKEN", "")

pytestmark = pytest.mark.skipif(not SECURE, reason="run.sh starts the secured collector")


def enter_token(page, token):
    dialog = page.locator("#token-dialog")
    dialog.wait_for(state="visible")
    page.fill("#token-input", token)
    page.click("#token-dialog button[value=ok]")


def test_the_dashboard_asks_for_a_token_and_shows_its_tenants_events(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{SECURE}/#/search?start=-1h")
    # No token yet: the dialog says why.
    page.locator("#token-dialog").wait_for(state="visible")
    assert "needs a token" in page.inner_text("#token-dialog .token-reason")
    # A wrong token is refused and asked for again.
    enter_token(page, "mcat_000000000000_wrong")
    page.locator("#token-dialog").wait_for(state="visible")
    wait_until("the refusal", lambda: "refused" in page.inner_text("#token-dialog .token-reason"), 10)
    enter_token(page, READ_TOKEN)
    page.wait_for_selector("main[data-state='ready']")
    wait_until("the tenant's event", lambda: page.locator("tbody tr").count() == 1, 15)
    assert "list_issues" in page.inner_text("tbody")
    # The token is kept for this tab: a reload asks nothing.
    page.reload()
    page.wait_for_selector("main[data-state='ready']")
    assert not page.locator("#token-dialog").is_visible()
    assert page.locator("tbody tr").count() == 1
    assert not errors, errors
    context.close()
