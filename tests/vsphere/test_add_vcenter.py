"""An Admin adds a vCenter: the certificate is shown, pinned on confirmation, checked ever after."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse

from hosts.models import VCenter
from hosts.vsphere import client as vsphere
from hosts.vsphere import tasks as vsphere_tasks
from portal.models import AuditEntry, Project
from tests.lab import pki
from tests.vsphere.conftest import add_vcenter

pytestmark = pytest.mark.django_db


def form(info: dict[str, Any], **overrides: str) -> dict[str, str]:
    return {
        "name": "lab",
        "url": info["url"],
        "username": info["user"],
        "password": info["password"],
        **overrides,
    }


def test_certificate_is_shown_then_pinned_on_confirmation(client, make_user, lab_vcenter) -> None:
    client.force_login(make_user("root", admin=True))
    shown = client.post(reverse("hosts:vcenter_add"), form(lab_vcenter))
    assert shown.status_code == 200
    page = shown.content.decode()
    assert lab_vcenter["thumbprint"] in page
    assert f'<dd id="vcenter-vms">{lab_vcenter["vms"]}</dd>' in page
    assert '<dd id="vcenter-datacenters">1</dd>' in page and "6.5" in page
    assert lab_vcenter["password"] not in page
    assert not VCenter.objects.exists()  # nothing saved before confirmation

    saved = client.post(reverse("hosts:vcenter_confirm"), {"thumbprint": lab_vcenter["thumbprint"]})
    assert saved.status_code == 302
    vcenter = VCenter.objects.get()
    assert vcenter.thumbprint == lab_vcenter["thumbprint"]
    assert vcenter.certificate.strip() == Path(lab_vcenter["certificate"]).read_text().strip()
    assert vcenter.password == lab_vcenter["password"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM hosts_vcenter")
        assert cursor.fetchone()[0].startswith("fernet:")
    assert AuditEntry.objects.filter(action="vcenter.add").count() == 1
    listing = client.get(reverse("hosts:vcenters")).content.decode()
    assert lab_vcenter["thumbprint"] in listing and lab_vcenter["password"] not in listing


def test_an_expected_thumbprint_that_matches_is_accepted_in_any_spelling(
    client, make_user, lab_vcenter
) -> None:
    client.force_login(make_user("root", admin=True))
    pasted = lab_vcenter["thumbprint"].replace(":", "").lower()
    response = client.post(reverse("hosts:vcenter_add"), form(lab_vcenter, thumbprint=pasted))
    assert response.status_code == 200 and b"confirm-vcenter" in response.content


def test_a_wrong_thumbprint_is_refused_clearly(client, make_user, lab_vcenter) -> None:
    client.force_login(make_user("root", admin=True))
    wrong = ":".join(["AB"] * 32)
    response = client.post(reverse("hosts:vcenter_add"), form(lab_vcenter, thumbprint=wrong))
    assert response.status_code == 400
    text = response.content.decode()
    assert f"not the {wrong} you entered" in text and lab_vcenter["thumbprint"] in text
    assert "vsphere_pending_vcenter" not in client.session
    # Confirming something other than what was shown is refused too.
    client.post(reverse("hosts:vcenter_add"), form(lab_vcenter))
    response = client.post(reverse("hosts:vcenter_confirm"), {"thumbprint": wrong})
    assert response.status_code == 400 and b"not the one shown" in response.content
    assert not VCenter.objects.exists()


def test_a_wrong_password_is_refused_and_nothing_saved(client, make_user, lab_vcenter) -> None:
    client.force_login(make_user("root", admin=True))
    response = client.post(reverse("hosts:vcenter_add"), form(lab_vcenter, password="not it"))
    assert response.status_code == 400
    assert b"refused the user name or password" in response.content
    assert not VCenter.objects.exists()


def test_an_unreachable_vcenter_is_reported(client, make_user) -> None:
    client.force_login(make_user("root", admin=True))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        response = client.post(
            reverse("hosts:vcenter_add"),
            {"name": "x", "url": f"https://127.0.0.1:{port}", "username": "u", "password": "p"},
        )
    assert response.status_code == 400 and b"cannot reach 127.0.0.1" in response.content


@pytest.mark.parametrize("url", ["ftp://vc", "https://", "https://vc:99999"])
def test_bad_addresses_are_refused_by_the_form(client, make_user, url: str) -> None:
    client.force_login(make_user("root", admin=True))
    response = client.post(
        reverse("hosts:vcenter_add"), {"name": "x", "url": url, "username": "u", "password": "p"}
    )
    assert response.status_code == 200 and b"clr-error" in response.content
    assert not VCenter.objects.exists()


def test_only_admins_add_vcenters(client, make_user) -> None:
    project = Project.objects.create(name="p")
    client.force_login(make_user("pa", project=project, role="project_admin"))
    assert client.get(reverse("hosts:vcenter_add")).status_code == 403
    assert client.post(reverse("hosts:vcenter_confirm"), {"thumbprint": "x"}).status_code == 403
    assert client.get(reverse("hosts:vcenters")).status_code == 403


def test_a_changed_certificate_is_refused_on_every_later_connection(lab_vcenter, tmp_path: Path) -> None:
    vcenter = add_vcenter(lab_vcenter)
    with vsphere.session(vcenter):
        pass
    # Pin another certificate, as if vCenter's had been replaced since confirmation.
    other = pki.CertificateAuthority.create(tmp_path, "Other CA", algorithm="rsa")
    files = other.issue_server(tmp_path, "other", ips=("127.0.0.1",), dns=(), algorithm="rsa")
    pem = files.cert.read_text()
    vcenter.certificate = pem
    vcenter.thumbprint = vsphere.thumbprint(ssl.PEM_cert_to_DER_cert(pem))
    vcenter.save()
    with pytest.raises(vsphere.CertificateMismatch, match="now presents a certificate"):
        vsphere.connect(vcenter)
    with pytest.raises(vsphere.CertificateMismatch):
        vsphere_tasks.sync_vcenter(vcenter.pk)
    vcenter.refresh_from_db()
    assert "now presents a certificate" in vcenter.last_error and not vcenter.connected
