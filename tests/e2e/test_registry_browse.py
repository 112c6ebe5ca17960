"""An Admin adds a registry; a Viewer walks it: registry -> repository -> tag, and gets
the pull line; a Provisioner walks on from the tag to deploying it on a host."""

from __future__ import annotations

from playwright.sync_api import expect

from hosts.models import Host
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
    page.fill(".content-area input[name=q]", "photon")
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


def test_a_provisioner_deploys_a_tag_from_the_registry_with_the_pull_live(  # type: ignore[no-untyped-def]
    daphne_factory, make_user, browser, screenshot, lab_registries, lab_engines, celery_worker_if_brokered
) -> None:
    from registry.models import Registry

    project = Project.objects.create(name="team")
    make_user("pat", project=project, role=Role.PROVISIONER)
    info = next(r for r in lab_registries if r["name"] == "anonymous")
    registry = Registry.objects.create(name="lab-anonymous", url=str(info["url"]))
    registry.projects.add(project)
    engine_info = next(e for e in lab_engines if not e["tls"])
    Host.objects.create(project=project, name="photon-07", docker_url=engine_info["url"], insecure=True)
    server = daphne_factory("daphne-registry-deploy")

    page = browser.new_context().new_page()
    sign_in(page, server.url, "pat")
    expect(page.locator("h2")).to_have_text("Dashboard")
    page.click(".header-nav >> text=Registries")
    page.click("#registries >> text=lab-anonymous")
    page.fill(".content-area input[name=q]", "nginx")
    page.click(".registry-toolbar >> text=Search")
    page.click("#repositories >> text=library/nginx")
    page.click("#tags >> text=1.25")
    page.select_option("#deploy-form select[name=host]", label="team / photon-07")
    page.click("#deploy-form button[type=submit]")
    image = f"{str(info['url']).split('://', 1)[1]}/library/nginx:1.25"
    expect(page.locator("#id_image")).to_have_value(image)
    page.fill("#id_name", "from-the-registry")
    page.select_option("#id_network", "none")
    page.click("#deploy-button")
    # The pull streams in per layer, then the outcome (these seed images carry no
    # program, so the engine may refuse to start one: either way the person is told).
    expect(page.locator("#deploy-progress")).to_contain_text(f"Pulling {image}")
    expect(page.locator("#deploy-progress .deploy-layer").first).to_be_visible()
    expect(page.locator("#deploy-progress .deploy-done")).to_have_count(1)
    screenshot(page, "deploy-from-registry")
    page.context.close()
