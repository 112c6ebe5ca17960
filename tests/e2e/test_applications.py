"""Issue 16's browser path: a Project admin imports a Compose file, deploys it with the plan
shown first, watches the deploy arrive live, and opens the web service at its published port.
Against a lab engine, with a Celery worker when there is a broker."""

from __future__ import annotations

from contextlib import closing

import pytest
from playwright.sync_api import expect

from hosts.models import Application
from portal.models import Project, Role
from tests.apps.lab_apps import busybox_of, clean, on
from tests.e2e.test_fleet_live import watching_daphne  # noqa: F401 - the fixture, shared
from tests.e2e.test_sign_in_and_live_activity import sign_in
from tests.hosts.conftest import trusted_host
from tests.lab import engines
from tests.lab.common import free_port

pytestmark = pytest.mark.lab


def test_import_a_compose_file_deploy_it_watch_it_live_and_open_the_web(
    watching_daphne,  # noqa: F811
    make_user,
    browser,
    screenshot,
    lab_engines,
    celery_worker_if_brokered,
) -> None:
    plain = next(e for e in lab_engines if not e["tls"])
    project = Project.objects.create(name="Shop")
    make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    on(trusted_host(plain, project, "photon-web"))
    port = free_port()
    name = f"shop{port}"
    source = f"""\
services:
  web:
    image: {busybox_of(plain)}
    command: ["sh", "-c", "echo hello-from-the-browser > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]
    ports: ["127.0.0.1:{port}:80"]
    depends_on:
      db: {{condition: service_healthy}}
  db:
    image: {busybox_of(plain)}
    command: ["sh", "-c", "touch /tmp/ok; exec sleep 3600"]
    healthcheck: {{test: ["CMD", "test", "-f", "/tmp/ok"], interval: 1s, retries: 30}}
"""
    url = watching_daphne  # with the engines watcher: a container's change reaches the page
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, url, "pa")
        page.goto(url + "/hosts/apps/")
        page.click("#template-new")
        page.fill("#id_name", "Shop")
        page.fill("#id_compose_file", source)
        page.click("#save-template")
        expect(page.locator("#template-source")).to_contain_text("hello-from-the-browser")

        page.click("#template-deploy")
        page.fill("#id_name", name)
        page.click("#deploy-plan-button")
        expect(page.locator("#deploy-plan")).to_contain_text("photon-web")
        screenshot(page, "apps-plan")
        page.click("#deploy-button")

        # On the application's page the deploy arrives live: its progress, then its state and
        # containers, without a reload.
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=10000)
        page.evaluate("window.__notReloaded = true")
        expect(page.locator("#app-state")).to_contain_text("Deployed", timeout=120000)
        expect(page.locator("#app-progress")).to_contain_text("started")
        link = page.locator("#app-containers a.app-port")
        expect(link).to_have_count(1)
        assert page.evaluate("window.__notReloaded") is True
        screenshot(page, "apps-deployed")
        with context.expect_page() as opened:
            link.click()
        expect(opened.value.locator("body")).to_contain_text("hello-from-the-browser")
        assert Application.objects.get(name=name).state == "running"

        # Stopped outside the portal: the engine's event reaches the application's page.
        with closing(engines.connect(plain)) as sdk:
            sdk.containers.get(f"{name}-web-1").stop(timeout=1)
        row = page.locator("#app-containers tr", has_text=f"{name}-web-1")
        expect(row).to_have_attribute("data-state", "exited", timeout=30000)
        assert page.evaluate("window.__notReloaded") is True
    finally:
        context.close()
        clean(plain, name)
