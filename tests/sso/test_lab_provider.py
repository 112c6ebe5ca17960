"""Against the lab's real OpenID Connect provider (django-oauth-toolkit over HTTPS from a
lab CA): discovery and its failures as the Admin sees them, and the whole code flow, the
portal's backend talking to the provider for real (token, key set, user info)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User

from portal.models import AuditEntry, Membership, Role
from sso.models import GroupMapping, Provider
from tests.lab import pki
from tests.sso.lab import PORTAL, form_data, sign_in_at_provider

pytestmark = [pytest.mark.django_db, pytest.mark.lab]


@pytest.fixture
def admin_client(client, make_user):  # type: ignore[no-untyped-def]
    client.force_login(make_user("admin", admin=True))
    return client


@pytest.fixture
def configured(lab_oidc: dict[str, Any], admin_client, ops) -> Provider:  # type: ignore[no-untyped-def]
    """Saved through the Admin's page (discovery for real), its "ops" group mapped."""
    response = admin_client.post("/sso/", form_data(lab_oidc))
    assert response.status_code == 302, response.content.decode()[-2000:]
    provider = Provider.objects.get()
    assert provider.discovered and provider.token_endpoint == f"{lab_oidc['issuer']}/token/"
    GroupMapping.objects.create(
        provider=provider, group=lab_oidc["mapped_group"], project=ops, role=Role.PROVISIONER
    )
    admin_client.logout()
    return provider


def test_the_test_button_reports_what_discovery_found(lab_oidc, admin_client) -> None:
    page = admin_client.post("/sso/test/", form_data(lab_oidc)).content.decode()
    assert "alert-success" in page
    assert f"Found the OpenID Connect issuer {lab_oidc['issuer']}" in page
    assert f"keys {lab_oidc['issuer']}/.well-known/jwks.json" in page


def test_discovery_failures_say_exactly_why(lab_oidc, admin_client, tmp_path: Path) -> None:
    other_ca = pki.CertificateAuthority.create(tmp_path, "not the provider's CA").cert_path.read_text()
    cases = {
        "TLS with https://127.0.0.1": form_data(lab_oidc, ca_certificate=other_ca),
        "answered HTTP 404, not the discovery document: this is not an OpenID Connect issuer": form_data(
            lab_oidc, issuer=lab_oidc["url"] + "/nothing"
        ),
        f"Issuer mismatch: the provider at {lab_oidc['issuer_by_other_name']}/.well-known/"
        f"openid-configuration calls itself {lab_oidc['issuer']}": form_data(
            lab_oidc, issuer=lab_oidc["issuer_by_other_name"]
        ),
    }
    for expected, data in cases.items():
        page = admin_client.post("/sso/test/", data).content.decode()
        assert "alert-danger" in page and expected in page, page
    untrusted = admin_client.post("/sso/test/", form_data(lab_oidc, ca_certificate=other_ca)).content.decode()
    assert "not signed by the pinned CA certificate (untrusted" in untrusted
    refused = admin_client.post("/sso/", form_data(lab_oidc, issuer=lab_oidc["issuer_by_other_name"]))
    assert refused.status_code == 400 and "Not saved: Issuer mismatch" in refused.content.decode()


def sign_in(client, lab: dict[str, Any], username: str):  # type: ignore[no-untyped-def]
    start = client.get("/sso/authenticate/")
    assert start.status_code == 302 and start["Location"].startswith(lab["issuer"] + "/authorize/")
    back = sign_in_at_provider(lab, start["Location"], username)
    parts = urlsplit(back)
    assert back.startswith(PORTAL + "sso/callback/")
    return client.get(parts.path + "?" + parts.query)


def test_the_whole_code_flow_signs_in_with_the_mapped_role(client, lab_oidc, configured, ops) -> None:
    response = sign_in(client, lab_oidc, "olivia")
    assert response.status_code == 302 and response["Location"] == "/", AuditEntry.objects.filter(
        action="sso.signin_refused"
    ).values_list("after", flat=True)
    olivia = User.objects.get(username="olivia")
    assert olivia.email == "olivia@lab.example" and olivia.first_name == "Olivia"
    assert Membership.objects.get(user=olivia, project=ops).role == Role.PROVISIONER
    assert client.get("/").status_code == 200
    signin = AuditEntry.objects.get(action="sso.signin")
    assert signin.actor == olivia and signin.after["groups"] == ["ops", "staff"]


def test_someone_in_no_mapped_group_signs_in_with_no_role(client, lab_oidc, configured) -> None:
    assert sign_in(client, lab_oidc, "nick")["Location"] == "/"
    assert not Membership.objects.filter(user__username="nick").exists()


def test_the_provider_never_signs_into_a_local_account(client, lab_oidc, configured, make_user) -> None:
    root = make_user("root", admin=True)
    response = sign_in(client, lab_oidc, "root")
    assert response["Location"] == "/accounts/login/"
    why = AuditEntry.objects.get(action="sso.signin_refused").after["why"]
    assert why.startswith("root is an account of the portal that did not come from Lab IdP")
    root.refresh_from_db()
    assert root.is_superuser and not Membership.objects.filter(user=root).exists()
    assert "_auth_user_id" not in client.session


def test_a_replayed_callback_is_refused(client, lab_oidc, configured) -> None:
    start = client.get("/sso/authenticate/")
    back = urlsplit(sign_in_at_provider(lab_oidc, start["Location"], "nick"))
    assert client.get(back.path + "?" + back.query)["Location"] == "/"
    client.logout()
    assert client.get(back.path + "?" + back.query)["Location"] == "/accounts/login/"
    assert "already used" in AuditEntry.objects.get(action="sso.signin_refused").after["why"]
