"""Sign-in through the login page with the lab's slapd: mapped roles, nested groups, a
disabled account, local accounts first and untouched, the directory down."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from directory.models import DirectoryAccount, DirectoryMembership
from portal.models import AuditEntry, Membership, Role
from tests.conftest import PASSWORD
from tests.directory.conftest import sign_in
from tests.lab import pki
from tests.lab.common import free_port

pytestmark = pytest.mark.django_db


def signed_in_as(client: Any) -> str | None:
    user_id = client.session.get("_auth_user_id")
    return get_user_model().objects.get(pk=user_id).username if user_id else None


def test_a_member_signs_in_on_the_login_page_and_gets_the_mapped_role(client, mapped, ops, ldap_lab) -> None:
    response = sign_in(client, "bob", ldap_lab["passwords"]["bob"])
    assert response.status_code == 302 and response["Location"] == "/"
    assert signed_in_as(client) == "bob"
    bob = get_user_model().objects.get(username="bob")
    assert (bob.first_name, bob.last_name, bob.email) == ("Bob", "Operator", "bob@lab.example")
    assert not bob.has_usable_password()  # the directory checks it, the portal keeps none
    membership = Membership.objects.get(user=bob, project=ops)
    assert membership.role == Role.PROVISIONER
    assert DirectoryMembership.objects.filter(membership=membership).exists()
    assert AuditEntry.objects.filter(action="directory.member_add", project=ops).exists()
    assert client.get("/").status_code == 200  # the session holds on the next request


def test_a_nested_group_gives_its_parents_role(client, mapped, ops, ldap_lab) -> None:
    # alice is in ops-leads only, and ops-leads is a member of ops.
    sign_in(client, "alice", ldap_lab["passwords"]["alice"])
    assert signed_in_as(client) == "alice"
    assert Membership.objects.get(user__username="alice", project=ops).role == Role.PROVISIONER


def test_without_nesting_the_nested_member_gets_nothing(client, mapped, ops, ldap_lab) -> None:
    mapped.group_type = "group_of_names"
    mapped.save()
    sign_in(client, "alice", ldap_lab["passwords"]["alice"])
    assert signed_in_as(client) == "alice"
    assert not Membership.objects.filter(user__username="alice").exists()


def test_an_admin_group_makes_an_admin(client, mapped, ldap_lab) -> None:
    sign_in(client, "carol", ldap_lab["passwords"]["carol"])
    carol = get_user_model().objects.get(username="carol")
    assert carol.is_superuser and carol.is_staff
    assert DirectoryAccount.objects.get(user=carol).admin_granted


def test_a_wrong_password_signs_nobody_in(client, mapped, ldap_lab) -> None:
    response = sign_in(client, "bob", "not-" + ldap_lab["passwords"]["bob"])
    assert response.status_code == 200 and signed_in_as(client) is None
    assert b"Please enter a correct" in response.content


def test_a_disabled_account_cannot_sign_in(client, mapped, ldap_lab) -> None:
    # dora is in ops and her password binds; her entry matches the disabled filter.
    response = sign_in(client, "dora", ldap_lab["passwords"]["dora"])
    assert response.status_code == 200 and signed_in_as(client) is None
    assert b"This directory account is disabled." in response.content
    dora = get_user_model().objects.get(username="dora")
    assert not dora.is_active
    assert not Membership.objects.filter(user=dora).exists()


def test_a_local_account_of_the_same_name_is_never_signed_into_by_the_directory(
    client, mapped, ldap_lab, make_user
) -> None:
    local = make_user("bob")
    sign_in(client, "bob", ldap_lab["passwords"]["bob"])
    assert signed_in_as(client) is None
    assert not DirectoryAccount.objects.filter(user=local).exists()
    sign_in(client, "bob", PASSWORD)  # its own password still works
    assert signed_in_as(client) == "bob"


def test_a_local_admin_signs_in_while_the_directory_is_down(client, mapped, make_user) -> None:
    mapped.url = f"ldap://127.0.0.1:{free_port()}"  # nothing listens there
    mapped.save()
    make_user("root", admin=True)
    sign_in(client, "root", PASSWORD)
    assert signed_in_as(client) == "root"
    client.logout()
    response = sign_in(client, "bob", "whatever-it-is")
    assert response.status_code == 200 and signed_in_as(client) is None
    assert b"did not answer" in response.content
    assert b"local accounts can" in response.content


def test_a_disabled_directory_setting_means_local_accounts_only(client, mapped, ldap_lab) -> None:
    mapped.enabled = False
    mapped.save()
    sign_in(client, "bob", ldap_lab["passwords"]["bob"])
    assert signed_in_as(client) is None


def test_sign_in_over_ldaps_too(client, mapped, ops, ldap_lab) -> None:
    mapped.url = ldap_lab["ldaps_url"]
    mapped.save()
    sign_in(client, "bob", ldap_lab["passwords"]["bob"])
    assert signed_in_as(client) == "bob"
    assert Membership.objects.get(user__username="bob", project=ops).role == Role.PROVISIONER


def test_an_untrusted_certificate_signs_nobody_in(client, mapped, ldap_lab, tmp_path) -> None:
    mapped.ca_certificate = pki.CertificateAuthority.create(tmp_path / "other").cert_path.read_text()
    mapped.save()
    response = sign_in(client, "bob", ldap_lab["passwords"]["bob"])
    assert signed_in_as(client) is None
    assert b"Directory accounts cannot sign in now" in response.content
