"""Add a TLS host through the form (Verify, confirm the certificate), then watch it change live:
a container stopped from outside the portal changes the dashboard row and the host page without reload."""

from __future__ import annotations

import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from hosts.models import Host
from portal.models import Role
from tests.conftest import REPO, daphne_env
from tests.e2e.test_sign_in_and_live_activity import sign_in
from tests.lab import engines
from tests.lab.common import free_port, wait_until

pytestmark = pytest.mark.lab


@pytest.fixture
def watching_daphne(transactional_db, tmp_path: Path):  # type: ignore[no-untyped-def]
    port = free_port()
    log = tmp_path / "daphne.log"
    env = daphne_env(PORTAL_HOST_CHECK_INTERVAL="2")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        env[name] = "/etc/ssl/certs/ca-certificates.crt"  # the portal must not depend on them
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "tests.hosts.watching_asgi:application",
        ],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: requests.get(url + "/accounts/login/", timeout=2).status_code == 200,
            timeout=60,
            what="daphne",
        )
        yield url
    finally:
        # As every daphne the tests start is stopped (tests.conftest.stop_daphne): a loaded
        # machine can hold its graceful shutdown past the wait.
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.timeout(180)
def test_add_a_tls_host_and_watch_a_container_stop_live(
    watching_daphne,
    make_user,
    browser,
    screenshot,
    lab_engines,
    celery_worker_if_brokered,  # the Start button's task: run alone, this test still has its worker
) -> None:
    from portal.models import Project

    project = Project.objects.create(name="Fleet")
    make_user("manager", project=project, role=Role.PROJECT_ADMIN)
    url = watching_daphne
    tls_engine = next(e for e in lab_engines if e["tls"])
    tls = {k: Path(v).read_text() for k, v in tls_engine["tls"].items()}

    with closing(engines.connect(tls_engine)) as sdk:
        listeners_before = sdk.info()["NEventsListener"]
    page = browser.new_context().new_page()
    sign_in(page, url, "manager")
    page.goto(url + "/hosts/add/")
    page.fill("#id_name", "photon-live")
    page.fill("#id_docker_url", tls_engine["url"])
    page.fill("#id_tls_ca", tls["ca"])
    page.fill("#id_tls_client_cert", tls["cert"])
    page.fill("#id_tls_client_key", tls["key"])
    page.fill("#id_tags_text", "e2e")
    page.click("#verify-button")
    expect(page.locator("#presented-fingerprint")).to_contain_text(":", timeout=15000)
    expect(page.locator(".verify-facts")).to_contain_text("running of 5")
    screenshot(page, "verify")
    page.check("#id_trust_certificate")
    page.click("#save-button")
    expect(page.locator("h2")).to_contain_text("photon-live", timeout=15000)
    host = Host.objects.get(name="photon-live")
    worker = page.locator('#container-rows tr[data-name="worker"]')
    expect(worker).to_have_attribute("data-state", "running")

    dashboard = browser.new_context().new_page()
    sign_in(dashboard, url, "manager")
    dashboard.goto(url + "/hosts/")
    row = dashboard.locator(f"#host-{host.pk}")
    expect(row.locator(".running")).to_have_text("2")
    expect(dashboard.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    for p in (page, dashboard):
        p.evaluate("window.__notReloaded = true")

    with closing(engines.connect(tls_engine)) as sdk:
        try:
            # The watcher picks the new host up within its next sweep and opens its event stream.
            wait_until(
                lambda: sdk.info()["NEventsListener"] > listeners_before, timeout=20, what="the event stream"
            )
            sdk.containers.get("worker").stop(timeout=1)
            expect(row.locator(".running")).to_have_text("1", timeout=10000)
            expect(dashboard.locator('[data-count="running"]')).to_have_text("1")
            expect(worker).to_have_attribute("data-state", "exited", timeout=10000)
            screenshot(dashboard, "dashboard-after-stop")
            screenshot(page, "host-after-stop")

            # And back, through the portal's own Start button.
            worker.locator('button[data-action="start"]').click()
            expect(worker).to_have_attribute("data-state", "running", timeout=15000)
            expect(row.locator(".running")).to_have_text("2", timeout=10000)
        finally:
            container = sdk.containers.get("worker")
            if container.status != "running":
                container.start()
    for p in (page, dashboard):
        assert p.evaluate("window.__notReloaded") is True
        p.context.close()
