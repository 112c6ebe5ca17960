"""Issue 12, point 8: behind a TLS proxy. Every URL handed to a host is the portal's
public https one, and enrollment binds only an address the host reports AND vCenter
confirms for that VM: never a forwarded header, never blindly the connection's peer."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from typing import Any

import pytest
import yaml
from django.test import Client, override_settings
from django.urls import reverse

from hosts import ca as portal_ca
from hosts.models import Host, ProvisionedVm, ProvisionQuota, ProvisionRequest, VCenter, VirtualMachine
from hosts.provision import tokens
from hosts.vsphere import client as vsphere
from hosts.vsphere import sync as vsphere_sync
from portal.models import Event, Project
from tests.conftest import PASSWORD, REPO
from tests.provision.test_enrollment import CLIENT_CA, ED25519, SSH_KEY
from tests.vsphere.conftest import add_vcenter

pytestmark = pytest.mark.django_db

PUBLIC = "https://portal.example.com"


@pytest.fixture
def project(db: None) -> Project:
    project = Project.objects.create(name="fleet")
    ProvisionQuota.objects.create(project=project, max_vms=5, max_cpus=10, max_memory_mb=10240)
    return project


def _kickstart_url(client: Client, make_user: Any, project: Project, **extra: Any) -> str:
    prov = make_user("prov", project=project, role="provisioner")
    assert client.login(username=prov.username, password=PASSWORD)
    response = client.post(
        reverse("hosts:provision_kickstart_new"), {"project": project.pk, "name": "metal-1"}, **extra
    )
    assert response.status_code == 200, response.content.decode()[:500]
    match = re.search(r"ks=(\S+?/hosts/provision/kickstart/[^/<\s]+/)", response.content.decode())
    assert match
    return match[1]


def _phone_home_url(config: dict[str, Any]) -> str:
    for line in config["postinstall"]:
        found = re.fullmatch(r"echo (\S+) \| base64 -d > /var/lib/cloud/seed/nocloud/user-data", line)
        if found:
            return str(yaml.safe_load(base64.b64decode(found[1]))["phone_home"]["url"])
    raise AssertionError("no user-data in the kickstart")


@override_settings(PORTAL_BASE_URL=PUBLIC, ALLOWED_HOSTS=["10.0.0.5", "testserver"])
def test_urls_handed_to_a_host_use_the_public_base_url(client, make_user, project) -> None:
    # The request came in over the proxy's inside hop (plain http, an internal name).
    ks_url = _kickstart_url(client, make_user, project, HTTP_HOST="10.0.0.5:8000")
    assert ks_url.startswith(f"{PUBLIC}/hosts/provision/kickstart/")
    config = Client().get(ks_url.removeprefix(PUBLIC), HTTP_HOST="10.0.0.5:8000").json()
    assert _phone_home_url(config).startswith(f"{PUBLIC}/hosts/provision/enroll/")


@override_settings(
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"), ALLOWED_HOSTS=["portal.example.com"]
)
def test_without_a_base_url_the_proxys_https_is_honoured(client, make_user, project) -> None:
    # As the proxy forwards it: the public Host, and the scheme in its header.
    ks_url = _kickstart_url(
        client, make_user, project, HTTP_HOST="portal.example.com", HTTP_X_FORWARDED_PROTO="https"
    )
    assert ks_url.startswith(f"{PUBLIC}/hosts/provision/kickstart/")


def _settings_in_subprocess(**env: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.PORTAL_BASE_URL); print(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))"
    )
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", **env}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=full, capture_output=True, text=True)


def test_proxy_settings_come_from_the_environment_and_bad_ones_are_refused() -> None:
    done = _settings_in_subprocess(PORTAL_BASE_URL=PUBLIC, PORTAL_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == [PUBLIC, "('HTTP_X_FORWARDED_PROTO', 'https')"]
    bad = _settings_in_subprocess(PORTAL_BASE_URL="portal.example.com")
    assert bad.returncode != 0 and "PORTAL_BASE_URL must be an http(s) URL" in bad.stderr
    bad = _settings_in_subprocess(PORTAL_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert bad.returncode != 0 and "PORTAL_PROXY_SSL_HEADER" in bad.stderr


# --- Enrollment binds what vCenter confirms ---------------------------------------------


@pytest.fixture
def cloned(project, lab_vcenter) -> tuple[ProvisionedVm, str, str]:
    """A VM of the lab's vCenter as provisioning leaves it waiting: its token, and the
    address its guest reports to vCenter."""
    vcenter: VCenter = add_vcenter(lab_vcenter)
    with vsphere.session(vcenter) as si:
        vsphere_sync.sync(vcenter, si)
    vm = VirtualMachine.objects.filter(vcenter=vcenter, is_photon=True, gone=False).exclude(ip_address="")[0]
    req = ProvisionRequest.objects.create(
        project=project, vcenter=vcenter, template="vm-1", count=1, name_pattern="new-{n}"
    )
    pvm = ProvisionedVm.objects.create(
        request=req,
        name="new-1",
        instance_id="portal-abc",
        moref=vm.moref,
        token_hash="x",
        token_expires=tokens.expiry(),
        state=ProvisionedVm.State.WAITING,
        tls_fingerprint=portal_ca.fingerprint(portal_ca.issue_server(["new-1"]).cert),
        client_ca_cert=CLIENT_CA.cert,
        client_ca_key=CLIENT_CA.key,
        ssh_private_key=SSH_KEY.private,
    )
    return pvm, tokens.issue_token(pvm), vm.ip_address


def _phone_home(token: str, peer: str, **extra: str):  # type: ignore[no-untyped-def]
    data = {"instance_id": "portal-abc", "hostname": "new-1", "pub_key_ed25519": ED25519}
    headers = {k: v for k, v in extra.items() if k.startswith("HTTP_")}
    data.update({k: v for k, v in extra.items() if not k.startswith("HTTP_")})
    return Client().post(reverse("hosts:provision_enroll", args=[token]), data, REMOTE_ADDR=peer, **headers)


def test_a_forged_forwarded_for_is_not_believed(cloned) -> None:
    pvm, token, guest_ip = cloned
    # Someone holding the token posts from elsewhere, claiming to be the VM in a header.
    response = _phone_home(token, "198.51.100.9", HTTP_X_FORWARDED_FOR=guest_ip)
    assert response.status_code == 403
    error = response.json()["error"]
    assert "198.51.100.9 is not an address vCenter reports for new-1" in error and guest_ip in error
    assert not Host.objects.exists()
    pvm.refresh_from_db()
    assert pvm.state == ProvisionedVm.State.WAITING and pvm.token_used is None
    assert Event.objects.filter(message__contains="is not an address vCenter reports").exists()


def test_a_posted_address_vcenter_does_not_confirm_is_refused(cloned) -> None:
    _, token, guest_ip = cloned
    response = _phone_home(token, guest_ip, address="192.0.2.250")
    assert response.status_code == 403
    assert "192.0.2.250 is not an address vCenter reports" in response.json()["error"]
    assert not Host.objects.exists()


def test_the_address_vcenter_confirms_is_bound_even_with_a_stale_inventory(cloned) -> None:
    pvm, token, guest_ip = cloned
    # The inventory has not caught up with the boot yet: vCenter is asked afresh.
    VirtualMachine.objects.filter(moref=pvm.moref).update(ip_address="", ip_addresses=[])
    response = _phone_home(token, guest_ip, HTTP_X_FORWARDED_FOR="203.0.113.66")
    assert response.status_code == 200, response.content
    host = Host.objects.get(name="new-1")
    assert host.address == guest_ip and host.docker_url == f"tcp://{guest_ip}:2376"


def test_behind_the_proxy_the_guest_reports_its_address_and_vcenter_confirms_it(cloned) -> None:
    _, token, guest_ip = cloned
    # The peer is the proxy; the host posts its own address, which vCenter confirms.
    response = _phone_home(token, "10.0.0.1", address=guest_ip)
    assert response.status_code == 200, response.content
    assert Host.objects.get(name="new-1").address == guest_ip
