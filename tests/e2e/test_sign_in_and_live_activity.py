"""A person signs in, sees the dashboard, and watches activity arrive live."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.conftest import PASSWORD


def sign_in(page, url: str, username: str, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    page.goto(url + "/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def test_sign_in_see_dashboard_and_receive_a_live_event(
    daphne_factory, make_user, browser, screenshot
) -> None:
    make_user("root", admin=True)
    make_user("bob")
    server = daphne_factory("daphne-e2e")

    admin_view = browser.new_context().new_page()
    sign_in(admin_view, server.url, "root", "not the password")
    expect(admin_view.locator("#login-error")).to_contain_text("Please enter a correct")
    screenshot(admin_view, "login-error")

    sign_in(admin_view, server.url, "root")
    expect(admin_view.locator("h2")).to_have_text("Dashboard")
    for section in ("Hosts", "Registries", "Changes"):
        expect(admin_view.locator(".header-nav")).to_contain_text(section)
    expect(admin_view.locator(".subnav")).to_contain_text("Administration")
    expect(admin_view.locator("#live-status")).to_have_attribute("data-state", "live")
    # Anything that reloads the page would lose this marker.
    admin_view.evaluate("window.__notReloaded = true")
    screenshot(admin_view, "dashboard")

    bob_view = browser.new_context().new_page()
    sign_in(bob_view, server.url, "bob")
    expect(bob_view.locator("h2")).to_have_text("Dashboard")
    expect(bob_view.locator(".subnav")).not_to_contain_text("Administration")

    bob_row = admin_view.locator('#activity-rows tr[data-action="auth.login"]', has_text="bob")
    expect(bob_row).to_have_count(1)
    assert admin_view.evaluate("window.__notReloaded") is True
    screenshot(admin_view, "live-event")

    for page in (admin_view, bob_view):
        page.context.close()
