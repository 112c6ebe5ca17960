"""portal.access: roles rank, unknown actions are refused, topics are scoped."""

from __future__ import annotations

import pytest

from portal import access
from portal.models import Project, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def project() -> Project:
    return Project.objects.create(name="web")


def test_roles_rank_within_their_project(make_user, project) -> None:
    other = Project.objects.create(name="db")
    viewer = make_user("viewer", project=project, role=Role.VIEWER)
    pa = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    assert access.can(viewer, "project.view", project)
    assert not access.can(viewer, "project.manage_members", project)
    assert access.can(pa, "project.manage_members", project)
    assert not access.can(pa, "project.view", other)
    assert list(access.projects(pa, "project.manage_members")) == [project]
    assert list(access.projects(viewer, "project.manage_members")) == []


def test_unknown_actions_and_anonymous_are_denied(make_user, project) -> None:
    from django.contrib.auth.models import AnonymousUser

    pa = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    assert not access.can(pa, "no.such.action", project)
    assert not access.can(AnonymousUser(), "portal.use")
    assert not access.can(None, "project.view", project)
    with pytest.raises(access.PermissionDenied):
        access.require(pa, "portal.admin")


def test_inactive_users_can_do_nothing(make_user, project) -> None:
    pa = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    pa.is_active = False
    assert not access.can(pa, "project.view", project)


def test_admins_can_everything(make_user, project) -> None:
    admin = make_user("root", admin=True)
    assert access.can(admin, "project.manage_members", project)
    assert access.can(admin, "no.such.action")
    assert set(access.projects(admin)) == {project}


def test_live_topics_are_scoped(make_user, project) -> None:
    viewer = make_user("viewer", project=project, role=Role.VIEWER)
    outsider = make_user("outsider")
    admin = make_user("root", admin=True)
    assert access.can_subscribe(viewer, f"audit:project:{project.pk}")
    assert not access.can_subscribe(outsider, f"audit:project:{project.pk}")
    assert access.can_subscribe(viewer, f"audit:user:{viewer.pk}")
    assert not access.can_subscribe(viewer, f"audit:user:{outsider.pk}")
    assert not access.can_subscribe(viewer, "audit:all")
    assert access.can_subscribe(admin, "audit:all")
    assert access.can_subscribe(viewer, f"project:{project.pk}:hosts")
    assert not access.can_subscribe(outsider, f"project:{project.pk}:hosts")
    assert not access.can_subscribe(viewer, "whatever")
    assert not access.can_subscribe(viewer, "project:abc")


def test_admin_section_is_for_staff_only(client, make_user) -> None:
    client.force_login(make_user("alice"))
    assert b"Administration" not in client.get("/").content
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
