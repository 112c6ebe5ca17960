"""The groups claim to portal rights, by the rule the directory uses too
(directory.mapping): the highest role wins, only what single sign-on made is changed,
Admin rights taken back only where a mapping gave them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from directory.mapping import DIRECTORY, Grants, combine
from directory.models import DirectoryMembership
from portal.models import AuditEntry, Membership, Project, Role
from sso import accounts
from sso.models import GroupMapping, SsoMembership
from tests.sso.conftest import person

pytestmark = pytest.mark.django_db


def test_the_highest_role_wins_and_admin_is_any(mapped, ops) -> None:
    GroupMapping.objects.create(provider=mapped, group="ops-leads", project=ops, role=Role.PROJECT_ADMIN)
    grants = accounts.grants_for(mapped, {"ops", "ops-leads"})
    assert grants == Grants(roles={ops.pk: Role.PROJECT_ADMIN}, admin=False)
    assert accounts.grants_for(mapped, {"admins"}) == Grants(roles={}, admin=True)
    assert accounts.grants_for(mapped, {"OPS", "staff"}) == Grants()  # names compared exactly
    assert combine([]) == Grants()


@pytest.mark.parametrize(
    ("value", "groups"), [(["a", "b"], {"a", "b"}), ("a", {"a"}), (None, set()), (3, set())]
)
def test_the_groups_claim_is_read_as_a_list_or_one_name(value, groups) -> None:
    assert accounts.groups_in({"groups": value}, "groups") == groups
    assert accounts.groups_in({"groups": value}, "") == set()


def test_roles_follow_the_groups_at_each_sign_in(mapped, ops) -> None:
    olivia = accounts.sign_in(mapped, person("s1", "olivia", "ops"))
    membership = Membership.objects.get(user=olivia, project=ops)
    assert (
        membership.role == Role.PROVISIONER and SsoMembership.objects.filter(membership=membership).exists()
    )
    GroupMapping.objects.filter(group="ops").update(role=Role.VIEWER)
    accounts.sign_in(mapped, person("s1", "olivia", "ops"))
    assert Membership.objects.get(user=olivia, project=ops).role == Role.VIEWER
    accounts.sign_in(mapped, person("s1", "olivia"))
    assert not Membership.objects.filter(user=olivia).exists()
    actions = list(
        AuditEntry.objects.filter(action__startswith="sso.member")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["sso.member_add", "sso.member_role", "sso.member_remove"]


def test_memberships_made_by_hand_or_by_the_directory_are_never_touched(mapped, ops) -> None:
    olivia = accounts.sign_in(mapped, person("s1", "olivia"))
    Membership.objects.create(user=olivia, project=ops, role=Role.VIEWER)  # by a Project admin
    other = Project.objects.create(name="Other")
    by_directory = Membership.objects.create(user=olivia, project=other, role=Role.VIEWER)
    DirectoryMembership.objects.create(membership=by_directory)
    accounts.sign_in(mapped, person("s1", "olivia", "ops"))
    accounts.sign_in(mapped, person("s1", "olivia"))
    assert Membership.objects.get(user=olivia, project=ops).role == Role.VIEWER
    assert Membership.objects.filter(pk=by_directory.pk).exists()
    assert not SsoMembership.objects.exists()


def test_admin_rights_come_and_go_with_the_mapped_group(mapped) -> None:
    carol = accounts.sign_in(mapped, person("s3", "carol", "admins"))
    assert carol.is_superuser and carol.is_staff and carol.sso_account.admin_granted
    carol = accounts.sign_in(mapped, person("s3", "carol"))
    assert not carol.is_superuser
    assert [
        a for a in AuditEntry.objects.order_by("pk").values_list("action", flat=True) if "admin_" in a
    ] == [
        "sso.admin_grant",
        "sso.admin_revoke",
    ]


def test_an_admin_made_by_hand_keeps_the_rights(mapped) -> None:
    """An Admin who came from the provider and was made Admin by hand stays one."""
    dan = accounts.sign_in(mapped, person("s4", "dan"))
    User.objects.filter(pk=dan.pk).update(is_superuser=True, is_staff=True)
    assert accounts.sign_in(mapped, person("s4", "dan")).is_superuser


def test_the_directory_keeps_its_own_marks_and_actions() -> None:
    assert DIRECTORY.marker is DirectoryMembership
    assert accounts.SOURCE.marker is SsoMembership
