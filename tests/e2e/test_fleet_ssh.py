"""Add a host by its ssh:// Docker endpoint in Chromium: Verify shows the engine and the host's SSH key
fingerprint, the host is saved only once the key is confirmed, and its page lists what the engine runs
and holds (images, volumes, networks: read over SSH like the rest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from hosts.fleet import engine_ssh
from hosts.models import Host, HostStatus
from portal.models import Project, Role
from tests.e2e.test_fleet_live import watching_daphne  # noqa: F401 - the fixture, shared
from tests.e2e.test_sign_in_and_live_activity import sign_in

pytestmark = pytest.mark.lab


@pytest.mark.timeout(180)
def test_add_an_ssh_host_with_its_key_confirmed(
    watching_daphne,  # noqa: F811
    make_user,
    browser,
    screenshot,
    lab_hosts,
) -> None:
    photon = next(h for h in lab_hosts if h["full"])
    project = Project.objects.create(name="Fleet ssh")
    make_user("manager", project=project, role=Role.PROJECT_ADMIN)
    page = browser.new_context().new_page()
    sign_in(page, watching_daphne, "manager")
    page.goto(watching_daphne + "/hosts/add/")
    page.fill("#id_name", "photon-over-ssh")
    page.fill("#id_docker_url", f"ssh://root@{photon['address']}")
    page.fill("#id_ssh_private_key", Path(photon["private_key"]).read_text())
    page.click("#verify-button")
    expected = engine_ssh.HostKey.of(engine_ssh.parse_host_key(photon["host_key"])).fingerprint
    expect(page.locator("#presented-host-key")).to_have_text(expected, timeout=20000)
    expect(page.locator(".verify-facts")).to_contain_text("Docker 20.10")
    screenshot(page, "verify")

    page.click("#save-button")  # not confirmed yet: refused, nothing saved
    expect(page.locator("#verify-result")).to_contain_text("Confirm that you trust this SSH host key")
    assert not Host.objects.exists()

    # Secrets are never rendered back: the key is given again.
    page.fill("#id_ssh_private_key", Path(photon["private_key"]).read_text())
    page.click("#verify-button")
    expect(page.locator("#presented-host-key")).to_have_text(expected, timeout=20000)
    page.check("#id_trust_host_key")
    page.click("#save-button")
    expect(page.locator("h2")).to_contain_text("photon-over-ssh", timeout=20000)
    expect(page.locator("#engine-error")).to_have_count(0)
    host = Host.objects.get()
    assert engine_ssh.parse_host_key(host.ssh_host_key) == engine_ssh.parse_host_key(photon["host_key"])
    assert host.status == HostStatus.ON
    # Its images, volumes and networks, read over SSH too once the page is shown (waited for: a
    # request still reading when the page closes holds daphne at its shutdown).
    expect(page.locator("#network-rows")).to_contain_text("bridge", timeout=20000)
    expect(page.locator("#engine-objects-error")).to_have_count(0)
    screenshot(page, "host-page")
    page.context.close()
