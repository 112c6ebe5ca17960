"""Adding a host: Verify shows what answers and the certificate; only a confirmed certificate is pinned."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from django.urls import reverse

from hosts.fleet import endpoint as engine_endpoint
from hosts.fleet import trust as engine_trust
from hosts.models import Host, HostStatus
from portal.models import AuditEntry
from tests.hosts.conftest import form_data, pem
from tests.lab import pki

pytestmark = pytest.mark.django_db


def test_verify_shows_the_engine_and_its_certificate_fingerprint(
    client, people, project, tls_engine, no_env_ca
) -> None:
    client.force_login(people["manager"])
    response = client.post(reverse("hosts:verify"), form_data(tls_engine, project))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Docker 20.10" in html and "running of 5" in html
    assert 'id="presented-fingerprint"' in html and "SHA-256" in html
    assert 'name="trust_certificate"' in html
    assert not Host.objects.exists()  # Verify saves nothing


def test_save_pins_the_confirmed_certificate_and_shows_the_containers(
    client, people, project, tls_engine, no_env_ca
) -> None:
    client.force_login(people["manager"])
    verify = client.post(reverse("hosts:verify"), form_data(tls_engine, project)).content.decode()
    fingerprint = verify.split('name="tls_fingerprint" value="', 1)[1].split('"', 1)[0]

    unconfirmed = client.post(
        reverse("hosts:add"), form_data(tls_engine, project, tls_fingerprint=fingerprint)
    )
    assert unconfirmed.status_code == 200
    assert "Confirm that you trust this certificate" in unconfirmed.content.decode()
    assert not Host.objects.exists()

    response = client.post(
        reverse("hosts:add"),
        form_data(tls_engine, project, tls_fingerprint=fingerprint, trust_certificate="on"),
    )
    host = Host.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("hosts:host", args=[host.pk])
    assert host.tls_fingerprint == fingerprint
    assert host.status == HostStatus.ON and host.containers_running == 2 and host.engine_version
    assert sorted(t.name for t in host.tags.all()) == ["prod", "web"]
    # The key is stored encrypted, and never rendered back.
    assert str(host.tls_client_key).strip() == pem(tls_engine, "key").strip()
    assert AuditEntry.objects.filter(action="host.add", object_id=str(host.pk)).exists()

    page = client.get(reverse("hosts:host", args=[host.pk])).content.decode()
    for name in ("web", "worker", "job-ok", "job-failed", "never-started"):
        assert f'data-name="{name}"' in page
    edit = client.get(reverse("hosts:edit", args=[host.pk])).content.decode()
    assert "PRIVATE KEY" not in edit


def test_a_changed_certificate_after_verify_is_refused(
    client, people, project, tls_engine, no_env_ca
) -> None:
    client.force_login(people["manager"])
    wrong = "AB:" * 31 + "AB"
    response = client.post(
        reverse("hosts:add"), form_data(tls_engine, project, tls_fingerprint=wrong, trust_certificate="on")
    )
    assert "different certificate" in response.content.decode()
    assert not Host.objects.exists()


def _silent_port() -> tuple[socket.socket, int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts TCP (the kernel's backlog), never answers
    return listener, listener.getsockname()[1]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unreachable", "refused"),
        ("wrong_ca", "not signed by the given CA"),
        ("wrong_client_cert", "refused the client certificate"),
        ("silent", "did not answer within"),
        ("malformed", "must start with tcp://"),
        ("no_port", "Give the port"),
    ],
)
def test_bad_input_gets_a_clear_message_quickly_and_saves_nothing(
    client, people, project, tls_engine, no_env_ca, tmp_path: Path, case: str, expected: str
) -> None:
    client.force_login(people["manager"])
    data = form_data(tls_engine, project)
    # Saved as if the person had confirmed the engine's real certificate.
    real = engine_trust.peer_certificate(
        engine_endpoint.parse_endpoint(tls_engine["url"]), engine_trust.Trust()
    ).fingerprint
    listener = None
    if case == "unreachable":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            data["docker_url"] = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    elif case == "wrong_ca":
        data["tls_ca"] = pki.CertificateAuthority.create(
            tmp_path / "ca", "Not the engine's CA"
        ).cert_path.read_text()
    elif case == "wrong_client_cert":
        stranger = pki.CertificateAuthority.create(tmp_path / "ca", "Someone else's CA")
        issued = stranger.issue_client(tmp_path / "ca", "intruder", "intruder")
        data["tls_client_cert"], data["tls_client_key"] = issued.cert.read_text(), issued.key.read_text()
    elif case == "silent":
        listener, port = _silent_port()
        data["docker_url"] = f"tcp://127.0.0.1:{port}"
    elif case == "malformed":
        data["docker_url"] = "http//photon 01"
    elif case == "no_port":
        data["docker_url"] = "tcp://127.0.0.1"
    try:
        started = time.monotonic()
        verify = client.post(reverse("hosts:verify"), data).content.decode()
        save = client.post(reverse("hosts:add"), {**data, "tls_fingerprint": real, "trust_certificate": "on"})
        elapsed = time.monotonic() - started
    finally:
        if listener is not None:
            listener.close()
    assert expected in verify
    assert save.status_code == 200 and expected in save.content.decode()
    assert not Host.objects.exists()
    assert elapsed < 20  # both requests: the acceptance bound is 10 s each


def test_a_plain_endpoint_needs_an_admin_and_is_flagged_insecure(
    client, people, project, plain_engine, no_env_ca
) -> None:
    data = {
        "project": str(project.pk),
        "name": "plain",
        "docker_url": plain_engine["url"],
        "ssh_port": "22",
        "ssh_user": "root",
        "insecure": "on",
    }
    client.force_login(people["manager"])
    refused = client.post(reverse("hosts:add"), data).content.decode()
    assert "refused unless an Admin ticks" in refused
    assert not Host.objects.exists()

    client.force_login(people["admin"])
    assert client.post(reverse("hosts:add"), data).status_code == 302
    host = Host.objects.get()
    assert host.insecure and host.tls_fingerprint == ""
    dashboard = client.get(reverse("hosts:index")).content.decode()
    assert "insecure-flag" in dashboard
    assert "insecure-flag" in client.get(reverse("hosts:host", args=[host.pk])).content.decode()


def test_odd_names_from_the_engine_are_escaped(client, people, project, tls_engine, no_env_ca) -> None:
    from tests.hosts.conftest import trusted_host

    host = trusted_host(tls_engine, project)
    client.force_login(people["viewer"])
    page = client.get(reverse("hosts:host", args=[host.pk])).content.decode()
    assert "<b>" not in page.split("<main", 1)[1]
