"""Issue 12, point 9, in a real browser: under the Content-Security-Policy the portal's
own scripts (htmx, live.js, page.js) still run, and the browser reports no violation."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.models import Project, Role
from tests.e2e.conftest import browser  # noqa: F401 -- the e2e tests' chromium, reused
from tests.e2e.test_sign_in_and_live_activity import sign_in

pytestmark = pytest.mark.browser


def test_the_portal_runs_under_its_csp_without_a_violation(daphne_factory, make_user, browser) -> None:  # noqa: F811
    web = Project.objects.create(name="web")
    make_user("carol", project=web, role=Role.PROJECT_ADMIN)
    server = daphne_factory("daphne-csp")
    page = browser.new_context().new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )

    sign_in(page, server.url, "carol")
    expect(page.locator("h2")).to_have_text("Dashboard")
    # live.js ran and its websocket got through connect-src 'self'.
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    # htmx ran, took its config from the page, and injected no <style> of its own.
    assert page.evaluate("window.htmx.config.includeIndicatorStyles") is False
    assert page.evaluate("document.querySelectorAll('style').length") == 0

    # page.js: a form with data-confirm asks first (dismissed: nothing happens; accepted: it goes).
    page.goto(server.url + "/account/tokens/")
    page.fill("input[name=name]", "ci")
    page.click("#token-form button[type=submit]")
    expect(page.locator("#new-token")).to_contain_text("pp_")
    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.click("text=Revoke")
    assert questions == ["Revoke ci? Scripts using it stop working."]
    expect(page.locator("text=revoked")).to_have_count(0)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Revoke")
    expect(page.locator(".label", has_text=re.compile("^revoked$"))).to_have_count(1)

    # The API's docs: Swagger UI starts from a script file, not an inline one.
    page.goto(server.url + "/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Photon Portal API")

    assert violations == []
    page.context.close()
