"""An Admin adds a registry; a Viewer walks it: registry -> repository -> tag, and gets the pull line.

The tag page's Deploy button belongs to the hosts' deploy flow (issue 4) and is
wired in when that lands: this walk stops at the ``docker pull`` reference it will hand over.
"""

from __future__ import annotations

from playwright.sync_api import expect

from portal.models import Project, Role
from tests.e2e.test_sign_in_and_live_activity import sign_in
from tests.lab import seed

SEED = seed.describe()


def test_add_a_registry_and_walk_to_a_multi_platform_tag(  # type: ignore[no-untyped-def]
    daphne_factory, make_user, browser, screenshot, lab_registries
) -> None:
    project = Project.objects.create(name="team")
    make_user("root", admin=True)
    make_user("vera", project=project, role=Role.VIEWER)
    info = next(r for r in lab_registries if r["name"] == "token")
    server = daphne_factory("daphne-registry")

    admin = browser.new_context().new_page()
    sign_in(admin, server.url, "root")
    expect(admin.locator("h2")).to_have_text("Dashboard")
    admin.click(".header-nav >> text=Registries")
    admin.click("text=Add registry")
    admin.fill("#id_name", "lab-token")
    admin.fill("#id_url", str(info["url"]))
    admin.select_option("#id_auth", "basic")
    admin.fill("#id_username", str(info["user"]))
    admin.fill("#id_password", "wrong")
    admin.check("text=team")
    admin.click("#save-registry")
    expect(admin.locator(".alert-danger")).to_contain_text("refused the user name or password")
    screenshot(admin, "wrong-password")
    admin.fill("#id_password", str(info["password"]))
    admin.click("#save-registry")
    expect(admin.locator("h2")).to_contain_text("lab-token")
    admin.context.close()

    page = browser.new_context().new_page()
    sign_in(page, server.url, "vera")
    expect(page.locator("h2")).to_have_text("Dashboard")
    page.click(".header-nav >> text=Registries")
    page.click("#registries >> text=lab-token")
    expect(page.locator("#repositories")).to_contain_text("library/many-tags")
    page.fill("input[name=q]", "photon")
    page.click(".registry-toolbar >> text=Search")
    page.click("#repositories >> text=library/photon")
    expect(page.locator("#tags tbody tr")).to_have_count(len(SEED.tags["library/photon"]))
    screenshot(page, "repository")
    page.click("#tags >> text=5.0")
    expect(page.locator("#platforms")).to_contain_text("linux/amd64")
    expect(page.locator("#platforms")).to_contain_text("linux/arm64")
    expect(page.locator("#shared-tags")).to_contain_text("latest")
    expect(page.locator(".card.image")).to_have_count(2)
    expect(page.locator(".card.image .layers tbody tr").first).to_be_visible()
    host = str(info["url"]).split("://", 1)[1]
    expect(page.locator("#pull-line")).to_have_value(f"docker pull {host}/library/photon:5.0")
    # A Viewer browses but is offered no delete.
    expect(page.locator("#delete-link")).to_have_count(0)
    screenshot(page, "tag")

    # The 1,000-tag repository pages.
    page.goto(f"{server.url}/registries/")
    page.click("#registries >> text=lab-token")
    page.click("#repositories >> text=library/many-tags")
    expect(page.locator("#tags tbody tr")).to_have_count(50)
    expect(page.locator("#tags tbody tr").first).to_contain_text("build-1050")
    page.click("a[rel=next]")
    expect(page.locator("#tags tbody tr").first).to_contain_text("build-1000")
    page.context.close()
