"""The whole path in the lab, with no manual step: clone on vcsim, a Photon-like host
boots through real cloud-init fed that VM's guestinfo, phones home to a real portal
(daphne), and the portal then reaches it over SSH with the pinned key and over
Docker TLS."""

from __future__ import annotations

from hosts.models import Host, ProvisionedVm, ProvisionQuota, ProvisionRequest
from hosts.provision import services as provision_services
from hosts.vsphere import client as vsphere
from hosts.vsphere import sync as vsphere_sync
from portal.models import Project
from tests.lab import cloud_boot
from tests.lab.common import wait_until
from tests.provision.conftest import assert_reachable, photon_template, wait_enrolled
from tests.vsphere.conftest import add_vcenter, find_vm


def test_a_clone_boots_through_cloud_init_and_enrolls_itself(
    celery_worker_if_brokered, lab_vcenter, boot_host, portal_on_lab_network, outside, monkeypatch
) -> None:
    vcenter = add_vcenter(lab_vcenter)
    with vsphere.session(vcenter) as si:
        vsphere_sync.sync(vcenter, si)
    project = Project.objects.create(name="fleet")
    ProvisionQuota.objects.create(project=project).vcenters.add(vcenter)
    template = photon_template(vcenter)
    req = ProvisionRequest.objects.create(
        project=project,
        vcenter=vcenter,
        template=template.moref,
        cpus=1,
        memory_mb=512,
        count=1,
        name_pattern="booted-{n}",
    )
    with vsphere.session(vcenter) as si:
        (pvm,) = provision_services.start(req, enroll_base_url=portal_on_lab_network, si=si)

    # The clone runs as the portal's task (a thread on the embedded default, a worker with Redis).
    def waiting() -> bool:
        pvm.refresh_from_db()
        return pvm.state in {ProvisionedVm.State.WAITING, ProvisionedVm.State.FAILED}

    wait_until(waiting, timeout=60, what="the clone to be powered on")
    assert pvm.state == ProvisionedVm.State.WAITING, pvm.detail

    # The boot gets exactly what the clone set, read back from vCenter.
    vm = find_vm(outside, pvm.name)
    guestinfo = {o.key: o.value for o in vm.config.extraConfig if o.key.startswith("guestinfo.")}
    cloud_boot.tools_report(vm, boot_host["address"])  # enrollment binds only what vCenter confirms
    booted = cloud_boot.boot(boot_host, guestinfo)
    assert booted["datasource"].startswith("DataSourceVMware"), booted["log"]
    assert booted["hostname"] == "booted-1"

    wait_enrolled(pvm, booted)
    host = Host.objects.get(pk=pvm.host_id)
    assert host.project == project
    assert_reachable(host, boot_host, monkeypatch)
