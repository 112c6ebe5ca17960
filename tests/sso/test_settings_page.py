"""The Admin's single sign-on page: nobody else reaches it (forged ids included), the
client secret is never shown back, saving runs discovery, every change is audited."""

from __future__ import annotations

import pytest
from django.db import connection

from portal.models import AuditEntry, Role
from sso import services
from sso import urls as sso_urls
from sso.discovery import DiscoveryFailed
from sso.models import GroupMapping, Provider
from tests.lab.common import free_port
from tests.sso.conftest import CLIENT_SECRET

pytestmark = pytest.mark.django_db

PAGES = [
    ("get", "/sso/"),
    ("post", "/sso/"),
    ("post", "/sso/test/"),
    ("post", "/sso/mappings/"),
]


def form_data(provider: Provider, **changes: str) -> dict[str, str]:
    data = {
        "enabled": "on" if provider.enabled else "",
        "display_name": provider.display_name,
        "issuer": provider.issuer,
        "ca_certificate": provider.ca_certificate,
        "client_id": provider.client_id,
        "client_secret": "",
        "scopes": provider.scopes,
        "username_claim": provider.username_claim,
        "email_claim": provider.email_claim,
        "groups_claim": provider.groups_claim,
    }
    data.update(changes)
    return data


def test_the_role_table_covers_every_page_of_sso() -> None:
    """A page added to sso/urls.py fails here until it is in PAGES (or deliberately public)."""
    public = {"authenticate", "callback", "button"}
    covered = {"settings", "test", "mapping_add", "mapping_remove"}
    assert {p.name for p in sso_urls.urlpatterns} - public == covered


@pytest.fixture
def admin_client(client, make_user):  # type: ignore[no-untyped-def]
    client.force_login(make_user("root", admin=True))
    return client


@pytest.mark.parametrize("role", [Role.VIEWER, Role.PROVISIONER, Role.PROJECT_ADMIN])
def test_no_one_but_an_admin_reaches_the_pages(client, make_user, mapped, ops, role) -> None:
    client.force_login(make_user("someone", project=ops, role=role))
    mapping = GroupMapping.objects.get(group="ops")
    forged = [("post", f"/sso/mappings/{mapping.pk}/remove/"), ("post", "/sso/mappings/999999/remove/")]
    for method, url in PAGES + forged:
        assert (
            getattr(client, method)(url, form_data(mapped, issuer="https://evil.test/")).status_code == 403
        ), url
    mapped.refresh_from_db()
    assert mapped.issuer != "https://evil.test/"
    assert GroupMapping.objects.filter(pk=mapping.pk).exists()
    assert not AuditEntry.objects.filter(action__startswith="sso.").exists()


def test_anonymous_is_sent_to_sign_in(client, provider) -> None:
    for method, url in PAGES:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_the_client_secret_is_never_shown_back(admin_client, provider) -> None:
    page = admin_client.get("/sso/").content.decode()
    assert 'name="client_secret"' in page and CLIENT_SECRET not in page
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_secret FROM sso_provider")
        (stored,) = cursor.fetchone()
    assert stored and CLIENT_SECRET not in stored  # encrypted at rest


def test_an_empty_secret_keeps_the_stored_one_and_a_new_one_is_audited_as_changed(
    admin_client, provider, monkeypatch
) -> None:
    def unreachable(issuer: str, ca: str):  # type: ignore[no-untyped-def]
        raise DiscoveryFailed("nothing answered")

    monkeypatch.setattr(services, "discover", unreachable)
    data = form_data(provider, enabled="")
    assert admin_client.post("/sso/", data).status_code == 302
    provider.refresh_from_db()
    assert str(provider.client_secret) == CLIENT_SECRET
    admin_client.post("/sso/", form_data(provider, enabled="", client_secret="a new secret"))
    provider.refresh_from_db()
    assert str(provider.client_secret) == "a new secret"
    entry = AuditEntry.objects.filter(action="sso.provider_save").latest("pk")
    assert entry.after["client_secret"] == "changed"
    assert "a new secret" not in str(entry.after) + str(entry.before)
    assert not provider.discovered  # saved turned off, what discovery found cleared


def test_enabled_settings_are_not_saved_when_discovery_fails(admin_client, provider) -> None:
    issuer = f"https://127.0.0.1:{free_port()}/o"
    response = admin_client.post("/sso/", form_data(provider, issuer=issuer))
    assert response.status_code == 400
    assert (
        f"Not saved: Could not reach {issuer}/.well-known/openid-configuration" in response.content.decode()
    )
    provider.refresh_from_db()
    assert provider.issuer != issuer
    assert not AuditEntry.objects.filter(action="sso.provider_save").exists()


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"issuer": "http://idp.test/o"}, "https:// URL"),
        ({"ca_certificate": "not a pem"}, "PEM"),
        ({"scopes": "profile email"}, "must include openid"),
    ],
)
def test_settings_are_checked(admin_client, provider, changes, error) -> None:
    response = admin_client.post("/sso/", form_data(provider, **changes))
    assert response.status_code == 400 and error in response.content.decode()


def test_the_test_button_says_why_discovery_failed(admin_client, provider) -> None:
    port = free_port()
    response = admin_client.post("/sso/test/", form_data(provider, issuer=f"https://127.0.0.1:{port}/o"))
    assert "alert-danger" in response.content.decode()
    assert f"Could not reach https://127.0.0.1:{port}/o/.well-known/openid-configuration" in (
        response.content.decode()
    )
    assert str(provider.client_secret) not in response.content.decode()


def test_mappings_are_added_and_removed_audited(admin_client, provider, ops) -> None:
    response = admin_client.post("/sso/mappings/", {"group": "ops", "target": str(ops.pk), "role": "viewer"})
    assert response.status_code == 302
    mapping = GroupMapping.objects.get(group="ops")
    assert mapping.project == ops and mapping.role == Role.VIEWER
    again = admin_client.post("/sso/mappings/", {"group": "ops", "target": str(ops.pk), "role": "viewer"})
    assert again.status_code == 409
    admin_client.post("/sso/mappings/", {"group": "admins", "target": "admin"})
    assert GroupMapping.objects.get(group="admins").admin
    no_role = admin_client.post("/sso/mappings/", {"group": "x", "target": str(ops.pk), "role": ""})
    assert no_role.status_code == 400
    assert admin_client.post(f"/sso/mappings/{mapping.pk}/remove/").status_code == 302
    assert not GroupMapping.objects.filter(pk=mapping.pk).exists()
    actions = list(
        AuditEntry.objects.filter(action__startswith="sso.mapping").values_list("action", flat=True)
    )
    assert sorted(actions) == ["sso.mapping_add", "sso.mapping_add", "sso.mapping_remove"]
