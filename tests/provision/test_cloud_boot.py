"""The whole path in the lab, with no manual step: clone on vcsim, a Photon-like host
boots through real cloud-init fed that VM's guestinfo, phones home to a real portal
(daphne), and the portal then reaches it over SSH with the pinned key and over
Docker TLS."""

from __future__ import annotations

import asyncio

from hosts import engine, provision, ssh, vsphere, vsphere_sync
from hosts.models import Host, ProvisionedVm, ProvisionQuota, ProvisionRequest
from portal.models import Event, Project
from tests.lab import cloud_boot
from tests.lab.common import wait_until
from tests.provision.conftest import photon_template
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
        (pvm,) = provision.start(req, enroll_base_url=portal_on_lab_network, si=si)

    # The clone runs as the portal's task (a thread on the embedded default, a worker with Redis).
    def waiting() -> bool:
        pvm.refresh_from_db()
        return pvm.state in {ProvisionedVm.State.WAITING, ProvisionedVm.State.FAILED}

    wait_until(waiting, timeout=60, what="the clone to be powered on")
    assert pvm.state == ProvisionedVm.State.WAITING, pvm.detail

    # The boot gets exactly what the clone set, read back from vCenter.
    vm = find_vm(outside, pvm.name)
    guestinfo = {o.key: o.value for o in vm.config.extraConfig if o.key.startswith("guestinfo.")}
    booted = cloud_boot.boot(boot_host, guestinfo)
    assert booted["datasource"].startswith("DataSourceVMware"), booted["log"]
    assert booted["hostname"] == "booted-1"

    def enrolled() -> bool:
        pvm.refresh_from_db()
        return pvm.state == ProvisionedVm.State.ENROLLED

    try:
        wait_until(enrolled, timeout=60, what="the host to enroll")
    except TimeoutError:
        events = list(Event.objects.values_list("message", flat=True))
        raise AssertionError(f"{pvm.state} {pvm.detail} {events}\n{booted['log'][-6000:]}") from None
    host = Host.objects.get(pk=pvm.host_id)
    assert host.project == project and host.address == boot_host["address"]
    assert host.docker_url == f"tcp://{boot_host['address']}:2376"

    # SSH with the key cloud-init made and the host sent, pinned at enrollment.
    assert asyncio.run(ssh.login_works(ssh.Access.of(host))) == ""
    assert host.ssh_host_key != boot_host["host_key"]  # cloud-init regenerated the host keys

    # Docker over TLS, the portal's client certificate and the pinned server certificate.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    client = wait_until(lambda: engine.client_for(host), timeout=30, what="dockerd on 2376 with TLS")
    assert client.version()["ApiVersion"]  # type: ignore[union-attr]
