"""The periodic sync: a person taken out of a group in the directory loses the role
without signing in; hand-made memberships and local Admins are never touched."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from directory.models import DirectoryAccount
from directory.sync import sync_all
from directory.tasks import sync_directory
from portal.celery import app
from portal.models import Membership, Project, Role
from portal.watchers import WATCHERS
from tests.directory.conftest import group, person, sign_in
from tests.lab import slapd
from tests.lab.common import free_port

pytestmark = pytest.mark.django_db


def test_removed_from_the_group_loses_the_role_at_the_next_sync_a_hand_made_one_stays(
    client, mapped, ops, ldap_lab
) -> None:
    sign_in(client, "bob", ldap_lab["passwords"]["bob"])
    bob = get_user_model().objects.get(username="bob")
    hand = Project.objects.create(name="Hand")
    Membership.objects.create(user=bob, project=hand, role=Role.VIEWER)  # by a Project admin
    assert Membership.objects.filter(user=bob, project=ops).exists()

    slapd.remove_member(ldap_lab, "ops", person(ldap_lab, "bob"))
    try:
        report = sync_all()
        assert report.failed == "" and report.checked == 1
        assert not Membership.objects.filter(user=bob, project=ops).exists()
        assert Membership.objects.get(user=bob, project=hand).role == Role.VIEWER
        bob.refresh_from_db()
        assert bob.is_active
    finally:
        slapd.add_member(ldap_lab, "ops", person(ldap_lab, "bob"))
    # Back in the group: the task (as the watcher queues it) gives the role again.
    assert "1 directory users checked" in sync_directory.apply().get()
    assert Membership.objects.get(user=bob, project=ops).role == Role.PROVISIONER


def test_a_hand_made_membership_in_a_mapped_project_is_left_alone(client, mapped, ops, ldap_lab) -> None:
    bob = get_user_model().objects.create_user("bob")
    DirectoryAccount.objects.create(user=bob, dn=person(ldap_lab, "bob"))
    Membership.objects.create(user=bob, project=ops, role=Role.PROJECT_ADMIN)
    slapd.remove_member(ldap_lab, "ops", person(ldap_lab, "bob"))
    try:
        sync_all()
    finally:
        slapd.add_member(ldap_lab, "ops", person(ldap_lab, "bob"))
    assert Membership.objects.get(user=bob, project=ops).role == Role.PROJECT_ADMIN


def test_admin_rights_from_the_directory_go_with_the_group_a_local_admin_keeps_his(
    client, mapped, ldap_lab, make_user
) -> None:
    local = make_user("root", admin=True)
    sign_in(client, "carol", ldap_lab["passwords"]["carol"])
    carol = get_user_model().objects.get(username="carol")
    assert carol.is_superuser
    slapd.remove_member(ldap_lab, "portal-admins", person(ldap_lab, "carol"))
    try:
        sync_all()
    finally:
        slapd.add_member(ldap_lab, "portal-admins", person(ldap_lab, "carol"))
    carol.refresh_from_db()
    local.refresh_from_db()
    assert not carol.is_superuser and not carol.is_staff
    assert local.is_superuser and local.is_active


def test_someone_no_longer_in_the_directory_is_deactivated(mapped, ldap_lab) -> None:
    gone = get_user_model().objects.create_user("zed")
    DirectoryAccount.objects.create(user=gone, dn=person(ldap_lab, "zed"))
    call_command("directory_sync")
    gone.refresh_from_db()
    assert not gone.is_active


def test_the_directory_down_deactivates_nobody(mapped, ldap_lab) -> None:
    bob = get_user_model().objects.create_user("bob")
    DirectoryAccount.objects.create(user=bob, dn=person(ldap_lab, "bob"))
    mapped.url = f"ldap://127.0.0.1:{free_port()}"
    mapped.save()
    report = sync_all()
    assert "did not answer" in report.failed
    bob.refresh_from_db()
    assert bob.is_active


def test_the_groups_dn_is_compared_as_the_directory_does(client, mapped, ops, ldap_lab) -> None:
    mapping = mapped.mappings.get(project=ops)
    mapping.group_dn = group(ldap_lab, "ops").upper().replace(",", ", ")
    mapping.save()
    sign_in(client, "bob", ldap_lab["passwords"]["bob"])
    assert Membership.objects.filter(user__username="bob", project=ops).exists()


def test_someone_the_sync_deactivates_is_signed_out_at_the_next_request(client, mapped, ldap_lab) -> None:
    sign_in(client, "bob", ldap_lab["passwords"]["bob"])
    assert client.get("/").status_code == 200
    mapped.user_filter = "(&(uid=%(user)s)(employeeType=gone))"  # bob no longer matches
    mapped.save()
    assert sync_all().deactivated == 1
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_sync_runs_as_a_watcher_queueing_a_celery_task() -> None:
    assert "directory" in WATCHERS
    assert "directory.sync" in app.tasks
