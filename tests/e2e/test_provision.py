"""Issue 9's browser flow: a Provisioner asks for a new host from a Photon template and
watches the request go from clone to enrolled on its page, live, while the lab boots
the clone through cloud-init and it phones home."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from hosts.models import ProvisionedVm, ProvisionQuota
from hosts.vsphere import client as vsphere
from hosts.vsphere import sync as vsphere_sync
from portal.models import Project, Role
from tests.e2e.test_sign_in_and_live_activity import sign_in
from tests.lab import cloud_boot
from tests.provision.conftest import (  # noqa: F401 -- fixtures, and its own vcsim: clones must not
    boot_host,  # change the inventory the shared lab_vcenter gives the vSphere tests
    lab_vcenter,
    photon_template,
    portal_on_lab_network,
    wait_enrolled,
)
from tests.vsphere.conftest import add_vcenter, find_vm, outside  # noqa: F401 -- fixture

pytestmark = pytest.mark.lab


def test_a_provisioning_request_goes_from_clone_to_enrolled(
    celery_worker_if_brokered,
    lab_vcenter,  # noqa: F811
    boot_host,  # noqa: F811
    portal_on_lab_network,  # noqa: F811
    outside,  # noqa: F811
    make_user,
    browser,
    screenshot,
) -> None:
    url = portal_on_lab_network
    vcenter = add_vcenter(lab_vcenter)
    with vsphere.session(vcenter) as si:
        vsphere_sync.sync(vcenter, si)
    project = Project.objects.create(name="fleet")
    ProvisionQuota.objects.create(project=project).vcenters.add(vcenter)
    make_user("prov", project=project, role=Role.PROVISIONER)
    template = photon_template(vcenter)

    page = browser.new_context().new_page()
    sign_in(page, url, "prov")
    page.goto(url + "/hosts/provision/new/")
    page.select_option("#id_project", str(project.pk))
    # The project's one vCenter comes chosen, its placement already drawn. (Choosing it
    # again would redraw it, and a pick racing that redraw could land on the old pickers.)
    expect(page.locator("#id_vcenter")).to_have_value(str(vcenter.pk))
    page.select_option("#id_template", str(template.pk))
    # Picking the datacenter redraws the placement pickers (htmx); then a network of it.
    with page.expect_response(lambda r: "/hosts/provision/new/?" in r.url):
        page.select_option("#id_datacenter", label="DC0")
    expect(page.locator("#id_datacenter")).to_have_value(template.datacenter.moref)
    page.select_option("#id_network", label="VM Network")
    screenshot(page, "provision-form")
    page.fill("#id_cpus", "1")
    page.fill("#id_memory_mb", "512")
    page.fill("#id_name_pattern", "browser-{n}")
    page.click("#provision-submit")
    page.wait_for_url("**/hosts/provision/*/")

    pvm = ProvisionedVm.objects.get(name="browser-1")
    expect(page.locator("#provision-placement")).to_contain_text("network VM Network")
    row = page.locator(f"#provision-vm-{pvm.pk}")
    expect(row).to_have_attribute("data-state", "waiting", timeout=60000)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.evaluate("window.__notReloaded = true")
    screenshot(page, "provision-waiting")

    vm = find_vm(outside, "browser-1")
    guestinfo = {o.key: o.value for o in vm.config.extraConfig}
    cloud_boot.tools_report(vm, boot_host["address"])  # enrollment binds only what vCenter confirms
    booted = cloud_boot.boot(boot_host, {k: v for k, v in guestinfo.items() if k.startswith("guestinfo.")})
    assert booted["datasource"].startswith("DataSourceVMware"), booted["log"]

    wait_enrolled(pvm, booted)

    # The enrollment arrives over the websocket: same page, no reload.
    expect(row).to_have_attribute("data-state", "enrolled", timeout=60000)
    expect(row.locator("a")).to_have_text("browser-1")
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "provision-enrolled")
