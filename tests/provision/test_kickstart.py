"""The kickstart path: a one-time URL serves Photon's installer a kickstart whose
postinstall leaves the same cloud-config as a NoCloud seed, ending in the same enrollment."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
import yaml
from django.test import Client
from django.urls import reverse

from hosts.models import Host, ProvisionedVm
from portal.models import Event
from tests.conftest import PASSWORD
from tests.provision.test_cloud_config import schema
from tests.provision.test_enrollment import ED25519

pytestmark = pytest.mark.django_db


def make_kickstart(client, make_user, project, name: str = "metal-1") -> str:  # type: ignore[no-untyped-def]
    prov = make_user("prov", project=project, role="provisioner")
    assert client.login(username=prov.username, password=PASSWORD)
    response = client.post(reverse("hosts:provision_kickstart_new"), {"project": project.pk, "name": name})
    assert response.status_code == 200, response.content.decode()[:1000]
    match = re.search(
        r"ks=(http://testserver/hosts/provision/kickstart/[^/<\s]+/)", response.content.decode()
    )
    assert match
    return match[1].removeprefix("http://testserver")


def seed_files(config: dict) -> dict[str, str]:  # type: ignore[type-arg]
    files = {}
    for line in config["postinstall"]:
        found = re.fullmatch(r"echo (\S+) \| base64 -d > /var/lib/cloud/seed/nocloud/(\S+)", line)
        if found:
            files[found[2]] = base64.b64decode(found[1]).decode()
    return files


def test_the_kickstart_is_served_once_and_its_seed_enrolls(
    client, make_user, project, tmp_path: Path
) -> None:
    path = make_kickstart(client, make_user, project)
    installer = Client()  # anonymous, as Photon's installer is
    response = installer.get(path)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    config = response.json()
    assert config["hostname"] == "metal-1" and config["disk"] == "/dev/sda"
    assert config["password"] == {"crypted": True, "text": "*"}
    assert config["public_key"].startswith("ssh-ed25519 ")
    files = seed_files(config)
    assert set(files) == {"user-data", "meta-data"}
    (tmp_path / "user-data").write_text(files["user-data"])
    assert schema(tmp_path / "user-data").returncode == 0

    # Served once: a second fetch is refused and logged.
    assert installer.get(path).status_code == 403
    assert Event.objects.filter(message__contains="already used").exists()

    # First boot: cloud-init's NoCloud seed phones home to the same enrollment.
    user_data = yaml.safe_load(files["user-data"])
    instance_id = yaml.safe_load(files["meta-data"])["instance-id"]
    enroll = user_data["phone_home"]["url"].removeprefix("http://testserver")
    data = {"instance_id": instance_id, "hostname": "metal-1", "pub_key_ed25519": ED25519}
    assert installer.post(enroll, data, REMOTE_ADDR="10.9.0.8").status_code == 200
    host = Host.objects.get(name="metal-1")
    assert host.docker_url == "tcp://10.9.0.8:2376" and host.project == project
    assert ProvisionedVm.objects.get(name="metal-1").state == ProvisionedVm.State.ENROLLED


def test_an_unknown_kickstart_token_is_refused(client) -> None:
    assert client.get(reverse("hosts:provision_kickstart", args=["nope"])).status_code == 403


def test_a_kickstart_for_a_taken_name_is_refused(client, make_user, project) -> None:
    Host.objects.create(project=project, name="metal-1", docker_url="tcp://192.0.2.1:2376")
    prov = make_user("prov", project=project, role="provisioner")
    assert client.login(username=prov.username, password=PASSWORD)
    response = client.post(
        reverse("hosts:provision_kickstart_new"), {"project": project.pk, "name": "metal-1"}
    )
    assert response.status_code == 400 and b"exists in this project" in response.content
    assert not ProvisionedVm.objects.exists()
