"""Point 1 of issue 12, in the lab: each host the portal enrolls gets credentials of its
own, and one host's credentials open no other host in a real handshake. Two clones on
vcsim boot through real cloud-init on two Photon-like hosts and phone home to a real
portal; host 1's Docker client certificate is then refused by host 2's dockerd and host
1's SSH key by host 2's sshd, while each host's own credentials work. After enrollment
the clone's guestinfo no longer carries the host's TLS key."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from django.utils import timezone

from hosts import ssh, ssh_keys
from hosts.changes.files import docker as docker_settings
from hosts.fleet import engine
from hosts.fleet.trust import Trust
from hosts.models import Host, ProvisionedVm, ProvisionQuota, ProvisionRequest
from hosts.provision import flow, guestinfo
from hosts.provision import services as provision_services
from hosts.vsphere import client as vsphere
from hosts.vsphere import sync as vsphere_sync
from portal.models import Event, Project
from tests import queued
from tests.lab import cloud_boot
from tests.lab.common import wait_until
from tests.lab.fixtures import start
from tests.provision.conftest import lab_vcenter, photon_template, wait_enrolled  # noqa: F401 -- fixture
from tests.vsphere.conftest import add_vcenter, find_vm, outside  # noqa: F401 -- fixture


@pytest.fixture
def p1_boot_hosts(lab_root: Any) -> Iterator[list[dict[str, Any]]]:
    """Two Photon-like hosts with dockerd, not yet booted (each its own lab: own link, own gateway)."""
    workdirs = [lab_root / f"p1-boot-{i}" for i in (1, 2)]
    hosts: list[dict[str, Any]] = []
    try:
        for workdir in workdirs:
            hosts.append(start(lambda w=workdir: cloud_boot.up(w)))
        yield hosts
    finally:
        for workdir in workdirs:
            with contextlib.suppress(Exception):
                cloud_boot.down(workdir)


def guestinfo_of(si: Any, name: str) -> dict[str, str]:
    """The VM's guestinfo keys as vCenter holds them now (read outside the portal)."""
    vm = find_vm(si, name)
    return {o.key: str(o.value) for o in vm.config.extraConfig if o.key.startswith("guestinfo.")}


def enroll_in_lab(
    project: Project, vcenter: Any, boot_host: dict[str, Any], portal_url: str, name: str, si: Any
) -> tuple[Host, ProvisionedVm]:
    """Clone ``name`` on vcsim, boot it on ``boot_host`` with the guestinfo the clone got, and
    wait for it to phone home to the portal at ``portal_url``."""
    req = ProvisionRequest.objects.create(
        project=project,
        vcenter=vcenter,
        template=photon_template(vcenter).moref,
        cpus=1,
        memory_mb=512,
        count=1,
        name_pattern=name,
    )
    with vsphere.session(vcenter) as session:
        (pvm,) = provision_services.start(req, enroll_base_url=portal_url, si=session)

    def waiting() -> bool:
        pvm.refresh_from_db()
        return pvm.state in {ProvisionedVm.State.WAITING, ProvisionedVm.State.FAILED}

    wait_until(waiting, timeout=60, what=f"the clone {name} to be powered on")
    assert pvm.state == ProvisionedVm.State.WAITING, pvm.detail
    guestinfo = guestinfo_of(si, name)
    cloud_boot.tools_report(find_vm(si, name), boot_host["address"])  # enrollment binds what vCenter confirms
    booted = cloud_boot.boot(boot_host, guestinfo)
    wait_enrolled(pvm, booted)
    return Host.objects.get(pk=pvm.host_id), pvm


def test_one_enrolled_hosts_credentials_open_no_other_host(
    celery_worker_if_brokered,
    lab_vcenter,  # noqa: F811
    p1_boot_hosts,
    daphne_factory,
    outside,  # noqa: F811
    monkeypatch,
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    vcenter = add_vcenter(lab_vcenter)
    with vsphere.session(vcenter) as si:
        vsphere_sync.sync(vcenter, si)
    project = Project.objects.create(name="fleet")
    ProvisionQuota.objects.create(project=project).vcenters.add(vcenter)
    enrolled: list[tuple[Host, ProvisionedVm]] = []
    for i, boot_host in enumerate(p1_boot_hosts, 1):
        # Each lab host reaches the machine only at its own gateway: a portal listening there.
        gateway = boot_host["gateway"]
        portal = daphne_factory(f"portal-{i}", bind=gateway, PORTAL_ALLOWED_HOSTS=gateway)
        enrolled.append(enroll_in_lab(project, vcenter, boot_host, str(portal.url), f"keyed-{i}", outside))
    (one, pvm_one), (two, pvm_two) = enrolled

    # Each host's own credentials work: Docker over TLS and an SSH login.
    for host in (one, two):
        wait_until(lambda h=host: engine.handshake_error(h.docker_url, Trust.of(h)) == "", timeout=30,
                   what=f"dockerd of {host.name} on 2376 with TLS")  # fmt: skip
        assert asyncio.run(ssh.login_works(ssh.Access.of(host))) == ""

    # Nothing was shared: its own client CA, client certificate and SSH key each.
    assert one.client_ca_cert != two.client_ca_cert
    assert one.tls_client_cert != two.tls_client_cert
    assert str(one.ssh_private_key) != str(two.ssh_private_key)

    # Host 1's Docker client certificate, presented to host 2's dockerd (verifying host 2's
    # server exactly as the portal does): the handshake is refused.
    borrowed = Trust(
        ca=two.tls_ca,
        client_cert=one.tls_client_cert,
        client_key=str(one.tls_client_key),
        fingerprint=two.tls_fingerprint,
    )
    refused = engine.handshake_error(two.docker_url, borrowed)
    assert refused, "host 2's dockerd accepted host 1's client certificate"
    # And the other way round.
    assert engine.handshake_error(
        one.docker_url,
        Trust(ca=one.tls_ca, client_cert=two.tls_client_cert, client_key=str(two.tls_client_key),
                     fingerprint=one.tls_fingerprint),
    )  # fmt: skip

    # Host 1's SSH key at host 2's sshd (host 2's pinned host key, so the server is the right one).
    intruder = ssh.Access(
        two.name, two.address, two.ssh_port, "root", str(one.ssh_private_key), two.ssh_host_key
    )
    problem = asyncio.run(ssh.login_works(intruder))
    assert "refused" in problem, problem
    intruder = ssh.Access(
        one.name, one.address, one.ssh_port, "root", str(two.ssh_private_key), one.ssh_host_key
    )
    assert "refused" in asyncio.run(ssh.login_works(intruder))

    # What each dockerd trusts for clients is its own client CA, nothing else.
    for host, boot_host in zip((one, two), p1_boot_hosts, strict=True):
        ca = cloud_boot.in_host(boot_host, ["cat", docker_settings.CA]).stdout
        assert ca.strip() == host.client_ca_cert.strip()

    # The clones' guestinfo no longer holds their TLS keys (nor any user data); metadata stays.
    for pvm in (pvm_one, pvm_two):

        def cleared(p: ProvisionedVm = pvm) -> bool:
            return not guestinfo_of(outside, p.name).get("guestinfo.userdata")

        wait_until(cleared, timeout=30, what=f"{pvm.name}'s guestinfo user data to be cleared")
        info = guestinfo_of(outside, pvm.name)
        assert info.get("guestinfo.metadata"), "the metadata (instance-id) must stay"
        assert not info.get("guestinfo.userdata.encoding")


@pytest.mark.parametrize("broker", ["up", "down"])
@pytest.mark.django_db(transaction=True)
def test_enrollment_clears_the_clones_secret_guestinfo(
    broker: str,
    celery_worker_if_brokered,
    lab_vcenter,  # noqa: F811
    outside,  # noqa: F811
    client,
) -> None:
    """With the task broker down at the phone-home, the host enrolls all the same and the
    provisioning watcher's sweep clears the guestinfo the task could not."""
    name = f"carrier-{broker}"
    vcenter = add_vcenter(lab_vcenter)
    with vsphere.session(vcenter) as si:
        vsphere_sync.sync(vcenter, si)
    project = Project.objects.create(name="fleet")
    ProvisionQuota.objects.create(project=project).vcenters.add(vcenter)
    req = ProvisionRequest.objects.create(
        project=project, vcenter=vcenter, template=photon_template(vcenter).moref, cpus=1, memory_mb=512,
        count=1, name_pattern=name,
    )  # fmt: skip
    with vsphere.session(vcenter) as si:
        (pvm,) = provision_services.start(req, enroll_base_url="http://portal.test", si=si)
    wait_until(lambda: ProvisionedVm.objects.get(pk=pvm.pk).state == ProvisionedVm.State.WAITING,
               timeout=60, what="the clone")  # fmt: skip
    pvm.refresh_from_db()
    # Before: the clone's user data carries the host's TLS server key (what the clearing removes).
    before = guestinfo_of(outside, name)
    user_data = yaml.safe_load(base64.b64decode(before["guestinfo.userdata"]))
    files = {f["path"]: f["content"] for f in user_data["write_files"]}
    assert "PRIVATE KEY" in files[docker_settings.KEY]

    # The host phones home with the token its guestinfo carried, as cloud-init does.
    url = user_data["phone_home"]["url"].removeprefix("http://portal.test")
    key = ssh_keys.new_ssh_key(name).public
    cloud_boot.tools_report(find_vm(outside, name), "10.9.0.7")
    with queued.broker_down() if broker == "down" else contextlib.nullcontext():
        response = client.post(
            url, {"instance_id": pvm.instance_id, "pub_key_ed25519": key}, REMOTE_ADDR="10.9.0.7"
        )
    assert response.status_code == 200, response.content
    if broker == "down":
        pvm.refresh_from_db()
        assert pvm.guestinfo_to_clear and guestinfo_of(outside, name)["guestinfo.userdata"]
        assert flow.clear_left_guestinfo(now=timezone.now() + flow.GUESTINFO_RETRY) == [pvm.pk]

    def cleared() -> bool:
        return not guestinfo_of(outside, name).get("guestinfo.userdata")

    wait_until(cleared, timeout=30, what="the guestinfo user data to be cleared")
    after = guestinfo_of(outside, name)
    assert after["guestinfo.metadata"] == before["guestinfo.metadata"]  # the instance-id stays
    assert not after.get("guestinfo.userdata.encoding")
    wait_until(
        lambda: not ProvisionedVm.objects.get(pk=pvm.pk).guestinfo_to_clear,
        timeout=30,
        what="the VM's row to say its guestinfo is cleared",
    )


@pytest.mark.django_db
def test_a_failed_clearing_is_told_in_an_event(lab_vcenter) -> None:  # noqa: F811
    vcenter = add_vcenter(lab_vcenter)
    project = Project.objects.create(name="fleet")
    req = ProvisionRequest.objects.create(
        project=project, vcenter=vcenter, template="vm-1", name_pattern="gone-1"
    )
    pvm = ProvisionedVm.objects.create(
        request=req, name="gone-1", instance_id="portal-gone", token_hash="h", token_expires=timezone.now(),
        moref="vm-999999",  # no such VM any more
    )  # fmt: skip
    assert guestinfo.clear_guestinfo(pvm) is False
    event = Event.objects.get(object_id=str(pvm.pk))
    assert "still holds its TLS key" in event.message and event.severity == "warning"
