"""Point 1 of issue 12, through the edit view: a host's credentials never travel with its
row. A Project admin cannot point an enrolled host at another machine; an Admin can, and
then the pinned trust and everything the portal issued for the old machine are gone; and
the client certificate the portal issued is never presented to another engine, not even by
Verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from hosts import ca as portal_ca
from hosts import ssh_keys
from hosts.fleet.forms import ENROLLED_MOVE_REFUSED, ISSUED_CERT_STAYS
from hosts.models import Host
from portal.models import Project, Role

pytestmark = pytest.mark.django_db

ADDRESS = "10.9.0.7"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHcZ7u6Z2s0c5bF7k1vZfQ3gI0Yt9x1w8c9YtQn1m2aB"
TRUST_FIELDS = (
    "docker_url", "address", "ssh_port", "ssh_user", "tls_ca", "tls_fingerprint", "tls_client_cert",
    "client_ca_cert", "ssh_host_key", "ssh_key_issued", "enrolled",
)  # fmt: skip


def issued_host(project: Project, *, enrolled: bool) -> Host:
    """A host as enrollment (or the Docker TLS change) leaves it: credentials issued for it alone."""
    client_ca = portal_ca.new_client_ca("photon-a")
    client = portal_ca.issue_client(client_ca, "photon-a")
    server = portal_ca.issue_server([ADDRESS])
    return Host.objects.create(
        project=project,
        name="photon-a",
        docker_url=f"tcp://{ADDRESS}:2376",
        tls_ca=portal_ca.authority().cert,
        tls_fingerprint=portal_ca.fingerprint(server.cert),
        tls_client_cert=client.cert,
        tls_client_key=client.key,
        client_ca_cert=client_ca.cert,
        client_ca_key=client_ca.key,
        address=ADDRESS,
        ssh_user="root",
        ssh_private_key=ssh_keys.new_ssh_key("photon-a").private,
        ssh_key_issued=True,
        ssh_host_key=HOST_KEY,
        enrolled=enrolled,
    )


def as_shown(host: Host, **changes: Any) -> dict[str, Any]:
    """The edit form as the browser posts it back (secrets empty: 'keep the stored one')."""
    data = {
        "project": str(host.project_id),
        "name": host.name,
        "docker_url": host.docker_url,
        "tls_ca": host.tls_ca,
        "tls_client_cert": host.tls_client_cert,
        "tls_client_key": "",
        "address": host.address,
        "ssh_port": str(host.ssh_port),
        "ssh_user": host.ssh_user,
        "ssh_private_key": "",
        "tags_text": "",
    }
    data.update(changes)
    return data


def snapshot(host: Host) -> dict[str, Any]:
    host.refresh_from_db()
    values = {name: getattr(host, name) for name in TRUST_FIELDS}
    values["secrets"] = (str(host.tls_client_key), str(host.client_ca_key), str(host.ssh_private_key))
    return values


@pytest.fixture
def project_a(db: None) -> Project:
    return Project.objects.create(name="A")


@pytest.fixture
def tls_engine_b(lab_engines: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Another project's engine (the lab's TLS engine), with the system CA bundle only."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, "/etc/ssl/certs/ca-certificates.crt")
    return next(e for e in lab_engines if e["tls"])


def pem(engine_info: dict[str, Any], which: str) -> str:
    return Path(engine_info["tls"][which]).read_text()


@pytest.mark.parametrize(
    "changes",
    [
        {"address": "10.9.0.99"},
        {"docker_url": "tcp://10.9.0.99:2376"},
        {"ssh_port": "2222"},
        {"ssh_user": "admin"},
    ],
    ids=["address", "docker_url", "ssh_port", "ssh_user"],
)
def test_a_project_admin_cannot_point_an_enrolled_host_elsewhere(
    client, make_user, project_a, changes
) -> None:
    host = issued_host(project_a, enrolled=True)
    before = snapshot(host)
    client.force_login(make_user("pa", project=project_a, role=Role.PROJECT_ADMIN))
    response = client.post(reverse("hosts:edit", args=[host.pk]), as_shown(host, **changes))
    assert response.status_code == 200
    assert ENROLLED_MOVE_REFUSED in response.content.decode()
    assert snapshot(host) == before
    # Verify refuses it the same way, before any connection is tried.
    verify = client.post(reverse("hosts:verify_existing", args=[host.pk]), as_shown(host, **changes))
    assert ENROLLED_MOVE_REFUSED in verify.content.decode()


def test_an_edit_that_does_not_move_it_is_not_refused_as_a_move(client, make_user, project_a) -> None:
    host = issued_host(project_a, enrolled=True)
    client.force_login(make_user("pa", project=project_a, role=Role.PROJECT_ADMIN))
    response = client.post(reverse("hosts:verify_existing", args=[host.pk]), as_shown(host, tags_text="web"))
    assert ENROLLED_MOVE_REFUSED not in response.content.decode()
    assert ISSUED_CERT_STAYS not in response.content.decode()


def test_the_issued_certificate_is_never_presented_to_another_engine(
    client, make_user, project_a, tls_engine_b
) -> None:
    """A host given the Docker TLS change (not enrolled): its Project admin may move it, but
    the certificate the portal issued for it stays behind, even for Verify."""
    host = issued_host(project_a, enrolled=False)
    before = snapshot(host)
    client.force_login(make_user("pa", project=project_a, role=Role.PROJECT_ADMIN))
    moved = as_shown(host, docker_url=tls_engine_b["url"])
    verify = client.post(reverse("hosts:verify_existing", args=[host.pk]), moved).content.decode()
    assert ISSUED_CERT_STAYS in verify and "Docker 20.10" not in verify
    response = client.post(reverse("hosts:edit", args=[host.pk]), moved)
    assert response.status_code == 200 and ISSUED_CERT_STAYS in response.content.decode()
    assert snapshot(host) == before


def test_an_admin_moving_an_enrolled_host_drops_pinned_trust_and_issued_credentials(
    client, make_user, project_a, tls_engine_b
) -> None:
    host = issued_host(project_a, enrolled=True)
    client.force_login(make_user("root", admin=True))
    moved = as_shown(
        host,
        docker_url=tls_engine_b["url"],
        address="10.9.0.99",
        tls_ca=pem(tls_engine_b, "ca"),
        tls_client_cert=pem(tls_engine_b, "cert"),
        tls_client_key=pem(tls_engine_b, "key"),
    )
    verify = client.post(reverse("hosts:verify_existing", args=[host.pk]), moved).content.decode()
    assert "Docker 20.10" in verify, verify[-2000:]
    fingerprint = verify.split('name="tls_fingerprint" value="', 1)[1].split('"', 1)[0]
    # Saving without a fresh confirmation is refused: the old pin does not carry over.
    unconfirmed = client.post(reverse("hosts:edit", args=[host.pk]), moved)
    assert unconfirmed.status_code == 200 and "Verify the endpoint first" in unconfirmed.content.decode()

    response = client.post(
        reverse("hosts:edit", args=[host.pk]),
        {**moved, "tls_fingerprint": fingerprint, "trust_certificate": "on"},
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    host.refresh_from_db()
    assert host.docker_url == tls_engine_b["url"] and host.address == "10.9.0.99"
    assert host.tls_fingerprint == fingerprint and host.tls_ca.strip() == pem(tls_engine_b, "ca").strip()
    assert str(host.tls_client_key).strip() == pem(tls_engine_b, "key").strip()
    # Everything issued for, or pinned to, the old machine is gone.
    assert host.client_ca_cert == "" and str(host.client_ca_key) == ""
    assert str(host.ssh_private_key) == "" and not host.ssh_key_issued
    assert host.ssh_host_key == ""
    assert host.enrolled  # still an Admin's business to move it again


def test_an_admin_moving_without_new_credentials_is_told_and_nothing_changes(
    client, make_user, project_a
) -> None:
    host = issued_host(project_a, enrolled=True)
    before = snapshot(host)
    client.force_login(make_user("root", admin=True))
    response = client.post(reverse("hosts:edit", args=[host.pk]), as_shown(host, address="10.9.0.99"))
    assert response.status_code == 200 and ISSUED_CERT_STAYS in response.content.decode()
    assert snapshot(host) == before
