"""An Admin adds vCenter (confirming its certificate), its Photon VMs become hosts, a power
change made outside the portal shows on the dashboard live, and a power-on from the portal
streams its task to the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from pyVim.task import WaitForTask

from hosts.models import Host, VirtualMachine
from hosts.vsphere import client as vsphere
from portal.models import Project
from tests.e2e.test_sign_in_and_live_activity import sign_in
from tests.lab import vcenter
from tests.lab.common import wait_until
from tests.lab.fixtures import start
from tests.vsphere.conftest import find_vm


@pytest.fixture
def portal_with_watchers(daphne_factory) -> str:  # type: ignore[no-untyped-def]
    """A daphne with the watchers on its own loop, as `make run` serves (the test database is made)."""
    return daphne_factory("portal", watchers=True).url


@pytest.fixture
def small_vcenter(tmp_path: Path) -> Iterator[dict[str, Any]]:
    workdir = tmp_path / "vcenter"
    yield start(lambda: vcenter.up(workdir, vms=10, photon_share=0.5))
    vcenter.down(workdir)


def power_off_in_vcsim(info: dict[str, Any], name: str) -> None:
    """Power a VM off behind the portal's back, as someone in the vSphere Client would."""
    si = vsphere.connect_pinned(
        info["url"], info["user"], info["password"], Path(info["certificate"]).read_text()
    )
    try:
        WaitForTask(find_vm(si, name).PowerOffVM_Task())
    finally:
        vsphere.disconnect(si)


def test_vcenter_added_photon_vms_live_on_the_dashboard_and_power_on_streams(
    celery_worker_if_brokered, portal_with_watchers, small_vcenter, make_user, browser, screenshot
) -> None:
    url, info = portal_with_watchers, small_vcenter
    make_user("root", admin=True)
    project = Project.objects.create(name="fleet")
    page = browser.new_context().new_page()
    sign_in(page, url, "root")

    page.goto(url + "/hosts/vsphere/vcenters/add/")
    page.fill("#id_name", "lab vCenter")
    page.fill("#id_url", info["url"])
    page.fill("#id_username", info["user"])
    page.fill("#id_password", info["password"])
    page.select_option("#id_auto_register_project", str(project.pk))
    page.click("#check-vcenter")
    expect(page.locator("#served-thumbprint")).to_have_text(info["thumbprint"])
    expect(page.locator("#vcenter-vms")).to_have_text(str(info["vms"]))
    screenshot(page, "confirm-certificate")
    page.click("#confirm-vcenter")
    expect(page.locator("#vcenters")).to_contain_text(info["thumbprint"])

    with_address = info["photon_vms"] - len(info["powered_off_photon"])
    wait_until(
        lambda: Host.objects.filter(project=project).count() == with_address,
        timeout=30,
        what="the Photon VMs registered as hosts",
    )
    host = Host.objects.get(project=project, name="photon-ü-01")
    vm = VirtualMachine.objects.get(host=host)

    page.goto(url + "/hosts/")
    placement = page.locator(f"#placement-{host.pk}")
    expect(placement.locator(".power-label")).to_have_text("On")
    expect(page.locator(f"#host-{host.pk}")).to_contain_text("photon-ü-01")
    page.evaluate("window.__notReloaded = true")

    power_off_in_vcsim(info, vm.name)
    expect(placement.locator(".power-label")).to_have_text("Off", timeout=10_000)
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "dashboard-powered-off-live")

    page.goto(url + f"/hosts/vsphere/vms/{vm.pk}/")
    expect(page.locator(f"#vm-summary-{vm.pk} .power-label")).to_have_text("Off")
    page.evaluate("window.__notReloaded = true")
    page.click("#action-power_on")
    task_row = page.locator("#vm-tasks tr.vm-task").first
    expect(task_row).to_have_attribute("data-action", "power_on")
    expect(task_row).to_have_attribute("data-state", "success", timeout=15_000)
    expect(page.locator(f"#vm-summary-{vm.pk} .power-label")).to_have_text("On", timeout=10_000)
    expect(page.locator("#vm-tasks .vm-row")).to_have_count(0)  # only task rows go into the list
    events = page.locator("#vm-events .vm-event")
    expect(events.first).to_be_visible()
    texts = events.all_inner_texts()
    assert any(vm.name in text and "powered off" in text for text in texts), texts
    assert not any("DC0_C0_RP0_VM0 " in text for text in texts), texts  # another VM's events
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "vm-powered-on")

    # The host's own page: the power change made in vcsim shows live, and the power buttons are
    # there too (issue 17: a host's whole story on one page).
    page.goto(url + f"/hosts/{host.pk}/")
    card = page.locator(f"#host-vm-{vm.pk}")
    expect(card.locator(".power-label")).to_have_text("On")
    expect(card.locator("#action-power_on")).to_be_disabled()
    page.evaluate("window.__notReloaded = true")
    power_off_in_vcsim(info, vm.name)
    expect(card.locator(".power-label")).to_have_text("Off", timeout=10_000)
    expect(card.locator("#action-power_on")).to_be_enabled()
    card.locator("#action-power_on").click()
    expect(card.locator(".power-label")).to_have_text("On", timeout=15_000)
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "host-page-vm-powered-on")

    # Names from vCenter are text, never markup.
    page.goto(url + "/hosts/vsphere/")
    expect(page.locator(".vm-name", has_text='<script>alert("vm")</script>')).to_have_count(1)
    page.context.close()
