"""The kickstart path in the lab, with no manual step: the installer's one-time fetch
from a real portal (daphne), what Photon's installer leaves on the disk, a first boot
through real cloud-init's NoCloud datasource, the phone-home, and the portal reaching
the new host over SSH with the pinned key and over Docker TLS: the clone's enrollment."""

from __future__ import annotations

import requests

from hosts.models import Host, ProvisionQuota
from hosts.provision import kickstart as provision_kickstart
from portal.models import Project, Role
from tests.lab import cloud_boot
from tests.provision.conftest import assert_reachable, wait_enrolled


def test_a_kickstart_install_boots_through_nocloud_and_enrolls_itself(
    boot_host, portal_on_lab_network, make_user, monkeypatch
) -> None:
    project = Project.objects.create(name="metal")
    ProvisionQuota.objects.create(project=project)
    requester = make_user("prov", project=project, role=Role.PROVISIONER)
    pvm, token = provision_kickstart.new_kickstart(project, "metal-1", requester)

    # The installer, booted with ks=<this URL>, fetches its kickstart once.
    url = f"{portal_on_lab_network}/hosts/provision/kickstart/{token}/"
    kickstart = requests.get(url, timeout=30)
    assert kickstart.status_code == 200, kickstart.text
    assert requests.get(url, timeout=30).status_code == 403
    cloud_boot.install(boot_host, kickstart.json())

    booted = cloud_boot.boot(boot_host, {}, datasources=cloud_boot.NOCLOUD)
    assert booted["datasource"].startswith("DataSourceNoCloud"), booted["log"]
    assert booted["hostname"] == "metal-1"

    wait_enrolled(pvm, booted)
    host = Host.objects.get(pk=pvm.host_id)
    assert host.project == project
    assert_reachable(host, boot_host, monkeypatch)
