"""A Project admin gives a directory group a role in their project, from the project page:
the group is found in the directory by name (or DN), its members get the role at once
through the sync the service queues, and only that project's Project admins may do it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from directory.models import DirectoryServer, GroupMapping
from directory.sync import sync_all
from portal.models import AuditEntry, Membership, Project, Role
from tests.directory.conftest import group, sign_in
from tests.queued import record_queued

pytestmark = pytest.mark.django_db


@pytest.fixture
def leads(make_user: Any, ops: Project) -> Any:
    return make_user("lead", project=ops, role=Role.PROJECT_ADMIN)


def _add(client: Any, project: Project, group_name: str, role: str = Role.PROVISIONER) -> Any:
    return client.post(
        reverse("directory:project_group_add", args=[project.pk]),
        {"group": group_name, "role": role},
        follow=True,
    )


def test_a_project_admin_adds_a_group_by_name_and_its_members_get_the_role(
    client, server: DirectoryServer, ops: Project, leads: Any, ldap_lab: dict[str, Any], monkeypatch
) -> None:
    sign_in(client, "bob", ldap_lab["passwords"]["bob"])  # known to the portal, no role yet
    bob = get_user_model().objects.get(username="bob")
    assert not Membership.objects.filter(user=bob).exists()

    client.force_login(leads)
    queued = record_queued(monkeypatch)
    page = _add(client, ops, "ops")
    assert page.status_code == 200
    mapping = GroupMapping.objects.get(project=ops)
    assert (mapping.group_dn, mapping.role, mapping.admin) == (
        group(ldap_lab, "ops"),
        Role.PROVISIONER,
        False,
    )
    assert f"Members of {group(ldap_lab, 'ops')} get the role Provisioner" in page.content.decode()
    assert queued == [("directory.sync", ())]
    assert AuditEntry.objects.filter(action="directory.mapping_add", project=ops, actor=leads).exists()
    # The page lists the group with its role.
    assert group(ldap_lab, "ops") in client.get(reverse("project-detail", args=[ops.pk])).content.decode()

    sync_all()  # what the queued task runs
    assert Membership.objects.get(user=bob, project=ops).role == Role.PROVISIONER


def test_a_group_given_by_dn_or_a_missing_one(
    client, server: DirectoryServer, ops: Project, leads: Any, ldap_lab: dict[str, Any], monkeypatch
) -> None:
    record_queued(monkeypatch)
    client.force_login(leads)
    _add(client, ops, group(ldap_lab, "ops-leads"), Role.VIEWER)
    assert GroupMapping.objects.get(project=ops).group_dn == group(ldap_lab, "ops-leads")

    for missing in ("no-such-group", f"cn=nope,{ldap_lab['groups']}", "ops*", "ops)(cn=*"):
        page = _add(client, ops, missing)
        assert "The directory has no group" in page.content.decode(), missing
    # The same group twice: refused, the first one kept.
    page = _add(client, ops, "ops-leads", Role.PROJECT_ADMIN)
    assert "already mapped there" in page.content.decode()
    assert list(GroupMapping.objects.filter(project=ops).values_list("role", flat=True)) == [Role.VIEWER]


def test_the_directory_down_or_off_says_so_and_adds_nothing(
    client, server: DirectoryServer, ops: Project, leads: Any
) -> None:
    client.force_login(leads)
    server.url = "ldap://127.0.0.1:9"  # nobody listens
    server.save()
    assert "The directory could not be asked" in _add(client, ops, "ops").content.decode()
    server.enabled = False
    server.save()
    assert "No directory is set up" in _add(client, ops, "ops").content.decode()
    assert not GroupMapping.objects.exists()


def test_only_the_projects_own_project_admins_add_or_remove_a_group(
    client, server: DirectoryServer, ops: Project, leads: Any, make_user: Any, ldap_lab: dict[str, Any]
) -> None:
    other = Project.objects.create(name="Other")
    theirs = GroupMapping.objects.create(
        server=server, group_dn=group(ldap_lab, "ops"), project=other, role=Role.VIEWER
    )
    mine = GroupMapping.objects.create(
        server=server, group_dn=group(ldap_lab, "ops"), project=ops, role=Role.VIEWER
    )
    for role in (Role.VIEWER, Role.PROVISIONER):
        client.force_login(make_user(f"a-{role}", project=ops, role=role))
        assert _add(client, ops, "ops-leads").status_code == 403
        remove = reverse("directory:project_group_remove", args=[ops.pk, mine.pk])
        assert client.post(remove).status_code == 403
        # The section shows the groups, without the form or the buttons.
        page = client.get(reverse("project-detail", args=[ops.pk])).content.decode()
        assert group(ldap_lab, "ops") in page and "project-group-add" not in page and "Remove" not in page

    client.force_login(leads)
    # Another project: as if it did not exist; another project's mapping through mine: 404.
    assert _add(client, other, "ops-leads").status_code == 404
    assert (
        client.post(reverse("directory:project_group_remove", args=[other.pk, theirs.pk])).status_code == 404
    )
    assert client.post(reverse("directory:project_group_remove", args=[ops.pk, theirs.pk])).status_code == 404
    assert GroupMapping.objects.count() == 2
    # A Project admin never makes a group portal Admin (no such choice reaches the service).
    _add(client, ops, "portal-admins", "admin")
    assert not GroupMapping.objects.filter(group_dn=group(ldap_lab, "portal-admins")).exists()

    client.post(reverse("directory:project_group_remove", args=[ops.pk, mine.pk]), follow=True)
    assert list(GroupMapping.objects.all()) == [theirs]
    assert AuditEntry.objects.filter(action="directory.mapping_remove", project=ops, actor=leads).exists()


def test_without_a_directory_the_project_page_has_no_such_section(client, ops: Project, leads: Any) -> None:
    client.force_login(leads)
    assert "directory-groups" not in client.get(reverse("project-detail", args=[ops.pk])).content.decode()
