"""The one-time enrollment URL: a host that phones home with its token is registered
with its SSH key pinned and its TLS Docker endpoint; anything else is refused and logged."""

from __future__ import annotations

import datetime

import asyncssh
import pytest
from cryptography import x509
from django.urls import reverse
from django.utils import timezone

from hosts import ca as portal_ca
from hosts import ssh_keys
from hosts.models import Host, ProvisionedVm, ProvisionRequest, VCenter
from hosts.provision import tokens
from portal.models import AuditEntry, Event

pytestmark = pytest.mark.django_db


def public_key(algorithm: str) -> str:
    key = asyncssh.generate_private_key(algorithm)
    return key.export_public_key().decode().strip() + " root@new-1"


ED25519 = public_key("ssh-ed25519")
OTHER_ED25519 = public_key("ssh-ed25519")
ECDSA = public_key("ecdsa-sha2-nistp256")
CLIENT_CA = portal_ca.new_client_ca("new-1")
SSH_KEY = ssh_keys.new_ssh_key("new-1")


@pytest.fixture
def waiting(project) -> tuple[ProvisionedVm, str]:  # type: ignore[no-untyped-def]
    """A VM cloned and powered on, its token in its guestinfo (here: returned)."""
    vcenter = VCenter.objects.create(name="vc", url="https://vc.test", username="u", password="p")
    req = ProvisionRequest.objects.create(
        project=project, vcenter=vcenter, template="vm-1", count=1, name_pattern="new-{n}"
    )
    pvm = ProvisionedVm.objects.create(
        request=req,
        name="new-1",
        instance_id="portal-abc",
        token_hash="x",
        token_expires=tokens.expiry(),
        state=ProvisionedVm.State.WAITING,
        tls_fingerprint=portal_ca.fingerprint(portal_ca.issue_server(["new-1"]).cert),
        # What seeding made for this VM alone (hosts.provision.seed.issue_seed).
        client_ca_cert=CLIENT_CA.cert,
        client_ca_key=CLIENT_CA.key,
        ssh_private_key=SSH_KEY.private,
    )
    return pvm, tokens.issue_token(pvm)


def phone_home(client, token: str, **fields: str):  # type: ignore[no-untyped-def]
    data = {"instance_id": "portal-abc", "hostname": "new-1", "fqdn": "new-1", "pub_key_ed25519": ED25519}
    data.update(fields)
    # No session, no CSRF token: exactly what cloud-init's phone_home sends.
    return client.post(reverse("hosts:provision_enroll", args=[token]), data, REMOTE_ADDR="10.9.0.7")


def test_phone_home_registers_the_host_pinned(client, waiting) -> None:
    pvm, token = waiting
    response = phone_home(client, token, pub_key_ecdsa=ECDSA)
    assert response.status_code == 200, response.content
    host = Host.objects.get(name="new-1")
    assert host.project == pvm.request.project
    assert host.docker_url == "tcp://10.9.0.7:2376" and host.address == "10.9.0.7"
    assert host.ssh_host_key == ED25519.rsplit(" ", 1)[0]  # the ed25519 key, without its comment
    assert host.tls_fingerprint == pvm.tls_fingerprint
    assert host.tls_ca == portal_ca.authority().cert
    assert host.tls_client_cert and str(host.tls_client_key).startswith("-----BEGIN")
    # Its own credentials, moved from the VM's row: the client CA its dockerd trusts signed its
    # client certificate, and the SSH key is the one its root was seeded with.
    assert host.client_ca_cert == CLIENT_CA.cert and str(host.client_ca_key) == CLIENT_CA.key
    client = x509.load_pem_x509_certificate(host.tls_client_cert.encode())
    assert client.issuer == x509.load_pem_x509_certificate(CLIENT_CA.cert.encode()).subject
    assert str(host.ssh_private_key) == SSH_KEY.private and host.ssh_key_issued and host.ssh_user == "root"
    assert host.enrolled
    pvm.refresh_from_db()
    assert not str(pvm.ssh_private_key) and not str(pvm.client_ca_key)
    assert pvm.state == ProvisionedVm.State.ENROLLED and pvm.host == host and pvm.token_used
    assert AuditEntry.objects.filter(action="host.enroll", project=host.project).exists()


def test_a_replayed_token_is_refused_and_logged(client, waiting) -> None:
    _, token = waiting
    assert phone_home(client, token).status_code == 200
    response = phone_home(client, token, pub_key_ed25519=OTHER_ED25519)
    assert response.status_code == 403 and b"already used" in response.content
    assert Host.objects.count() == 1
    assert Event.objects.filter(severity="warning", message__contains="already used").exists()


def test_an_expired_token_is_refused(client, waiting) -> None:
    pvm, token = waiting
    ProvisionedVm.objects.filter(pk=pvm.pk).update(
        token_expires=timezone.now() - datetime.timedelta(seconds=1)
    )
    response = phone_home(client, token)
    assert response.status_code == 403 and b"expired" in response.content
    assert not Host.objects.exists()
    assert Event.objects.filter(message__contains="expired", project=pvm.request.project).exists()


def test_a_token_for_another_vm_is_refused(client, waiting) -> None:
    _, token = waiting
    response = phone_home(client, token, instance_id="portal-someone-else")
    assert response.status_code == 403 and b"another VM" in response.content
    assert not Host.objects.exists()


def test_a_key_of_another_host_is_refused(client, waiting, project) -> None:
    _, token = waiting
    Host.objects.create(project=project, name="old", docker_url="tcp://10.9.0.1:2376", ssh_host_key=ED25519)
    response = phone_home(client, token)
    assert response.status_code == 403 and b"another host" in response.content
    assert Host.objects.count() == 1


def test_something_that_is_not_a_key_is_refused(client, waiting) -> None:
    _, token = waiting
    response = phone_home(client, token, pub_key_ed25519="ssh-ed25519 bm90IGEga2V5 root@new-1")
    assert response.status_code == 403 and b"no SSH host key" in response.content
    assert not Host.objects.exists()


def test_an_unknown_token_is_refused_and_logged(client, waiting) -> None:
    response = phone_home(client, "not-a-token")
    assert response.status_code == 403
    assert Event.objects.filter(message__contains="unknown enrollment token").exists()


def test_a_get_changes_nothing(client, waiting) -> None:
    _, token = waiting
    assert client.get(reverse("hosts:provision_enroll", args=[token])).status_code == 405
    assert not Host.objects.exists()
