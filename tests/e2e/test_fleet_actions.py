"""A Provisioner in Chromium: deploy a container (progress live), follow its logs (tail N, follow, stop
following), watch its CPU and memory chart, see the host's volumes and networks, restart it and
remove it after a confirmation; the dashboard's hosts card counts it in and out live, without
reload."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import docker.errors
import pytest
from playwright.sync_api import expect

from hosts.models import Host
from portal.models import Project, Role
from tests.e2e.test_fleet_live import watching_daphne  # noqa: F401 - the fixture, shared
from tests.e2e.test_sign_in_and_live_activity import sign_in
from tests.hosts.conftest import trusted_host
from tests.lab import engines
from tests.lab.common import wait_until

pytestmark = pytest.mark.lab

NAME = "e2e-app"
# Twenty numbered lines, then a tick every half second: enough to tell a tail from the whole log.
COMMAND = "sh -c 'for i in $(seq 0 19); do echo line-$i; done; while true; do echo tick; sleep 0.5; done'"


def _container(tls_engine: dict[str, Any]) -> Any:
    with closing(engines.connect(tls_engine)) as sdk:
        try:
            return sdk.containers.get(NAME)
        except docker.errors.NotFound:
            return None


def _running(tls_engine: dict[str, Any]) -> int:
    with closing(engines.connect(tls_engine)) as sdk:
        return int(sdk.info()["ContainersRunning"])


def _remove(tls_engine: dict[str, Any]) -> None:
    with closing(engines.connect(tls_engine)) as sdk:
        for c in sdk.containers.list(all=True, filters={"name": NAME}):
            c.remove(force=True)


@pytest.mark.timeout(240)
def test_deploy_logs_stats_restart_and_remove_through_the_ui(
    watching_daphne,  # noqa: F811
    make_user,
    browser,
    screenshot,
    lab_engines,
    celery_worker_if_brokered,
) -> None:
    tls_engine = next(e for e in lab_engines if e["tls"])
    _remove(tls_engine)
    project = Project.objects.create(name="Fleet actions")
    make_user("prov", project=project, role=Role.PROVISIONER)
    url = watching_daphne
    busybox = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox"))

    dashboard = browser.new_context().new_page()
    sign_in(dashboard, url, "prov")
    dashboard.goto(url + "/")
    card = dashboard.locator("#card-hosts")
    expect(dashboard.locator("#live-status")).to_have_attribute("data-state", "live", timeout=10000)
    dashboard.evaluate("window.__notReloaded = true")
    expect(card.locator('[data-count="total"]')).to_have_text("0")
    # Added once the card is live: the watcher's first check turns it ON and counts its containers.
    host = trusted_host(tls_engine, project, name="photon-actions")
    expect(card.locator('[data-count="on"]')).to_have_text("1", timeout=20000)
    before = _running(tls_engine)
    expect(card.locator('[data-count="running"]')).to_have_text(str(before), timeout=10000)

    page = browser.new_context().new_page()
    sign_in(page, url, "prov")
    try:
        # Deploy, with the progress streaming in.
        page.goto(f"{url}/hosts/{host.pk}/")
        page.click("#deploy-link")
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=10000)
        page.fill("#id_image", busybox)
        page.fill("#id_name", NAME)
        page.fill("#id_command", COMMAND)
        page.select_option("#id_network", "none")
        page.locator("#deploy-form").locator("button[type=submit]").click()
        expect(page.locator(".deploy-started")).to_be_visible(timeout=10000)
        expect(page.locator("#deploy-progress .deploy-done")).to_have_attribute(
            "data-level", "success", timeout=60000
        )
        screenshot(page, "deployed")
        wait_until(
            lambda: (c := _container(tls_engine)) is not None and c.status == "running",
            timeout=30,
            what="running",
        )
        expect(card.locator('[data-count="running"]')).to_have_text(str(before + 1), timeout=10000)

        # The new container is on the host page; its logs: the last 3 lines, then live, then stopped.
        page.goto(f"{url}/hosts/{host.pk}/")
        row = page.locator(f'#container-rows tr[data-name="{NAME}"]')
        expect(row).to_have_attribute("data-state", "running", timeout=10000)
        wait_until(lambda: b"line-19" in _container(tls_engine).logs(), timeout=20, what="the numbered lines")
        row.locator("a").first.click()
        expect(page.locator("h2")).to_contain_text(NAME)
        page.fill("#logs-tail", "3")
        page.click("#logs-follow")
        logs = page.locator("#logs")
        expect(page.locator("#logs-state")).to_have_text("following", timeout=10000)
        expect(logs).to_contain_text("tick", timeout=10000)
        ticks = logs.inner_text().count("tick")
        wait_until(lambda: logs.inner_text().count("tick") > ticks, timeout=10, what="lines arriving live")
        assert "line-0\n" not in logs.inner_text() + "\n"  # tail 3: the old lines are not sent
        # CPU and memory: the chart draws the samples as they come.
        expect(page.locator("#stats-mem-now")).to_contain_text("MiB", timeout=20000)
        assert page.locator("#stats-cpu").get_attribute("points")
        screenshot(page, "logs-and-stats")
        page.click("#logs-stop")
        expect(page.locator("#logs-state")).to_have_text("stopped", timeout=10000)
        shown = logs.inner_text()
        engine_ticks = _container(tls_engine).logs().count(b"tick")
        wait_until(
            lambda: _container(tls_engine).logs().count(b"tick") >= engine_ticks + 3,
            timeout=10,
            what="the container to keep printing",
        )
        assert logs.inner_text() == shown  # nothing arrives after Stop following

        # Restart: the engine restarts it (a new start time) and the row is running again.
        started = _container(tls_engine).attrs["State"]["StartedAt"]
        page.goto(f"{url}/hosts/{host.pk}/")
        # The engine's images, volumes and networks follow the page (asked by htmx once it is
        # shown): the container is listed on the network it was deployed on ("none").
        expect(page.locator("#network-rows")).to_contain_text(NAME, timeout=10000)
        expect(page.locator("#image-rows")).to_contain_text(busybox)
        expect(page.locator("#volume-new")).to_be_visible()
        row.locator('button[data-action="restart"]').click()
        wait_until(
            lambda: _container(tls_engine).attrs["State"]["StartedAt"] != started, timeout=30, what="restart"
        )
        expect(row).to_have_attribute("data-state", "running", timeout=10000)

        # Remove: a confirmation first (nothing removed yet), then it is gone, live.
        row.locator('[data-action="remove"]').click()
        expect(page.locator("#confirm-remove")).to_be_visible()
        assert _container(tls_engine) is not None
        screenshot(page, "confirm-remove")
        page.click("#confirm-remove")
        wait_until(lambda: _container(tls_engine) is None, timeout=30, what="the container removed")
        expect(page.locator(f'#container-rows tr[data-name="{NAME}"]')).to_have_count(0, timeout=10000)
        expect(card.locator('[data-count="running"]')).to_have_text(str(before), timeout=10000)
        assert dashboard.evaluate("window.__notReloaded") is True
    finally:
        _remove(tls_engine)
        page.context.close()
        dashboard.context.close()
    assert Host.objects.filter(pk=host.pk).exists()
