"""The kickstart path in the lab, with no manual step: the installer's one-time fetch
from a real portal (daphne), what Photon's installer leaves on the disk, a first boot
through real cloud-init's NoCloud datasource, the phone-home, and the portal reaching
the new host over SSH with the pinned key and over Docker TLS: the clone's enrollment."""

from __future__ import annotations

import asyncio

import requests

from hosts import engine, provision, ssh
from hosts.models import Host, ProvisionedVm, ProvisionQuota
from portal.models import Event, Project, Role
from tests.lab import cloud_boot
from tests.lab.common import wait_until


def test_a_kickstart_install_boots_through_nocloud_and_enrolls_itself(
    boot_host, portal_on_lab_network, make_user, monkeypatch
) -> None:
    project = Project.objects.create(name="metal")
    ProvisionQuota.objects.create(project=project)
    requester = make_user("prov", project=project, role=Role.PROVISIONER)
    pvm, token = provision.new_kickstart(project, "metal-1", requester)

    # The installer, booted with ks=<this URL>, fetches its kickstart once.
    url = f"{portal_on_lab_network}/hosts/provision/kickstart/{token}/"
    kickstart = requests.get(url, timeout=30)
    assert kickstart.status_code == 200, kickstart.text
    assert requests.get(url, timeout=30).status_code == 403
    cloud_boot.install(boot_host, kickstart.json())

    booted = cloud_boot.boot(boot_host, {}, datasources=cloud_boot.NOCLOUD)
    assert booted["datasource"].startswith("DataSourceNoCloud"), booted["log"]
    assert booted["hostname"] == "metal-1"

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
    assert asyncio.run(ssh.login_works(ssh.Access.of(host))) == ""
    assert host.ssh_host_key != boot_host["host_key"]  # cloud-init made the host keys

    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    client = wait_until(lambda: engine.client_for(host), timeout=30, what="dockerd on 2376 with TLS")
    assert client.version()["ApiVersion"]  # type: ignore[union-attr]
