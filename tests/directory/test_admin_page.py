"""The Admin's directory page: who may see it, "Test connection" and its sentences, the
bind password never shown, every change audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from directory.models import DirectoryServer, GroupMapping
from portal.models import AuditEntry, Role
from tests.directory.conftest import group
from tests.lab import pki

pytestmark = pytest.mark.django_db

PAGES = [
    ("get", "/directory/"),
    ("post", "/directory/"),
    ("post", "/directory/test/"),
    ("post", "/directory/mappings/"),
    ("post", "/directory/mappings/1/remove/"),
]


def form_data(server: DirectoryServer, **changes: str) -> dict[str, str]:
    data = {
        "enabled": "on" if server.enabled else "",
        "url": server.url,
        "ca_certificate": server.ca_certificate,
        "bind_dn": server.bind_dn,
        "bind_password": "",
        "user_search_base": server.user_search_base,
        "user_filter": server.user_filter,
        "group_search_base": server.group_search_base,
        "group_type": server.group_type,
        "first_name_attribute": "givenName",
        "last_name_attribute": "sn",
        "email_attribute": "mail",
        "disabled_filter": server.disabled_filter,
    }
    data.update(changes)
    return data


@pytest.fixture
def admin_client(client, make_user):  # type: ignore[no-untyped-def]
    client.force_login(make_user("root", admin=True))
    return client


@pytest.mark.parametrize("role", [Role.PROJECT_ADMIN, Role.VIEWER])
def test_no_one_but_an_admin_reaches_the_directory_pages(client, make_user, ops, role) -> None:
    client.force_login(make_user("someone", project=ops, role=role))
    for method, url in PAGES:
        assert getattr(client, method)(url).status_code in {403, 404}, url
    assert b"/directory/" not in client.get("/").content  # not in their menu either


def test_test_connection_reports_users_and_groups(admin_client, server) -> None:
    response = admin_client.post("/directory/test/", form_data(server), HTTP_HX_REQUEST="true")
    text = response.content.decode()
    assert response.status_code == 200
    assert "Connected and bound as" in text and "4 users under" in text
    assert "cn=ops-leads,ou=groups,dc=lab,dc=example" in text


def test_test_connection_over_ldaps_too(admin_client, server, ldap_lab) -> None:
    response = admin_client.post("/directory/test/", form_data(server, url=ldap_lab["ldaps_url"]))
    assert "Connected and bound as" in response.content.decode()


def test_a_wrong_bind_password_is_named(admin_client, server) -> None:
    response = admin_client.post("/directory/test/", form_data(server, bind_password="not-it"))
    assert "The directory refused the bind: wrong bind DN or password" in response.content.decode()
    assert "Traceback" not in response.content.decode()


@pytest.mark.parametrize("url_key", ["url", "ldaps_url"])
def test_a_certificate_the_pinned_ca_did_not_sign_is_untrusted(
    admin_client, server, ldap_lab, tmp_path: Path, url_key: str
) -> None:
    other = pki.CertificateAuthority.create(tmp_path / "other", "Some other CA")
    data = form_data(server, url=ldap_lab[url_key], ca_certificate=other.cert_path.read_text())
    text = admin_client.post("/directory/test/", data).content.decode()
    assert "is not signed by the pinned CA certificate (untrusted" in text, text


def test_a_certificate_for_another_host_name_is_named(admin_client, server, ldap_lab) -> None:
    text = admin_client.post(
        "/directory/test/", form_data(server, url=ldap_lab["wrong_name_url"])
    ).content.decode()
    assert "is not for the host name 127.0.0.2" in text, text


def test_a_search_base_not_found_is_named(admin_client, server) -> None:
    data = form_data(server, user_search_base="ou=nobody,dc=lab,dc=example")
    text = admin_client.post("/directory/test/", data).content.decode()
    assert "The user search base ou=nobody,dc=lab,dc=example was not found in the directory." in text


def test_saving_keeps_the_password_never_shows_it_and_is_audited(admin_client, server, ldap_lab) -> None:
    secret = ldap_lab["bind_password"]
    page = admin_client.get("/directory/").content.decode()
    assert secret not in page and "Test connection" in page
    assert 'href="/directory/"' in admin_client.get("/").content.decode()  # in the Admin's menu
    response = admin_client.post("/directory/", form_data(server, user_filter="(uid=%(user)s)"))
    assert response.status_code == 302
    server.refresh_from_db()
    assert str(server.bind_password) == secret  # left empty: kept
    entry = AuditEntry.objects.get(action="directory.server_save")
    assert secret not in str(entry.before) + str(entry.after)
    admin_client.post("/directory/", form_data(server, bind_password="new-secret-value"))
    assert "new-secret-value" not in admin_client.get("/directory/").content.decode()
    assert AuditEntry.objects.filter(action="directory.server_save").count() == 2
    for entry in AuditEntry.objects.all():
        assert "new-secret-value" not in str(entry.after) and secret not in str(entry.after)


def test_bad_settings_are_refused_with_a_sentence_and_change_nothing(admin_client, server) -> None:
    response = admin_client.post(
        "/directory/", form_data(server, url="http://example.com", ca_certificate="not a PEM")
    )
    text = response.content.decode()
    assert response.status_code == 400
    assert "An ldaps:// or ldap:// URL" in text and "Paste the CA certificate as PEM" in text
    assert DirectoryServer.objects.get().url == server.url
    assert not AuditEntry.objects.filter(action="directory.server_save").exists()


def test_mappings_are_added_and_removed_audited(admin_client, server, ops, ldap_lab) -> None:
    dn = group(ldap_lab, "viewers")
    response = admin_client.post(
        "/directory/mappings/", {"group_dn": dn, "target": str(ops.pk), "role": "viewer"}
    )
    assert response.status_code == 302
    mapping = GroupMapping.objects.get(group_dn=dn)
    assert mapping.role == Role.VIEWER and mapping.project == ops
    again = admin_client.post(
        "/directory/mappings/", {"group_dn": dn.upper(), "target": str(ops.pk), "role": "viewer"}
    )
    assert again.status_code == 409 and b"already mapped" in again.content
    assert admin_client.post(f"/directory/mappings/{mapping.pk}/remove/").status_code == 302
    assert not GroupMapping.objects.exists()
    assert [e.action for e in AuditEntry.objects.filter(action__startswith="directory.").order_by("id")] == [
        "directory.mapping_add",
        "directory.mapping_remove",
    ]
