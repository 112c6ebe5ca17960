"""Projects and memberships from the portal: who may manage, and what is recorded."""

from __future__ import annotations

import pytest

from portal.models import AuditEntry, Membership, Project, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def web() -> Project:
    return Project.objects.create(name="web")


def test_only_admins_create_projects(client, make_user) -> None:
    client.force_login(make_user("alice"))
    assert client.get("/projects/new/").status_code == 403
    client.force_login(make_user("root", admin=True))
    response = client.post("/projects/new/", {"name": "web", "description": "front ends"})
    assert response.status_code == 302
    project = Project.objects.get(name="web")
    assert AuditEntry.objects.filter(action="project.create", project_name="web").exists()
    duplicate = client.post("/projects/new/", {"name": "web"})
    assert duplicate.status_code == 200 and b"already exists" in duplicate.content
    assert Project.objects.count() == 1 and project.description == "front ends"


def test_project_admins_manage_members(client, make_user, web) -> None:
    pa = make_user("pa", project=web, role=Role.PROJECT_ADMIN)
    make_user("carol")
    client.force_login(pa)
    assert (
        client.post(f"/projects/{web.pk}/members/", {"username": "carol", "role": "provisioner"}).status_code
        == 302
    )
    carol = Membership.objects.get(project=web, user__username="carol")
    assert carol.role == Role.PROVISIONER
    client.post(f"/projects/{web.pk}/members/{carol.pk}/", {"role": "viewer"})
    carol.refresh_from_db()
    assert carol.role == Role.VIEWER
    client.post(f"/projects/{web.pk}/members/{carol.pk}/", {"remove": "1"})
    assert not Membership.objects.filter(pk=carol.pk).exists()
    actions = set(AuditEntry.objects.filter(project_name="web").values_list("action", flat=True))
    assert {"project.member_add", "project.member_role", "project.member_remove"} <= actions


def test_bad_member_input_changes_nothing(client, make_user, web) -> None:
    client.force_login(make_user("pa", project=web, role=Role.PROJECT_ADMIN))
    response = client.post(
        f"/projects/{web.pk}/members/", {"username": "nobody", "role": "viewer"}, follow=True
    )
    assert b"No one named nobody can sign in yet" in response.content
    response = client.post(f"/projects/{web.pk}/members/", {"username": "pa", "role": "viewer"}, follow=True)
    assert b"already a member" in response.content
    assert Membership.objects.get(project=web, user__username="pa").role == Role.PROJECT_ADMIN


def test_viewers_see_members_but_cannot_manage_and_outsiders_see_nothing(client, make_user, web) -> None:
    viewer = make_user("viewer", project=web, role=Role.VIEWER)
    client.force_login(viewer)
    page = client.get(f"/projects/{web.pk}/")
    assert page.status_code == 200 and b"Add a member" not in page.content
    membership = Membership.objects.get(user=viewer)
    assert (
        client.post(f"/projects/{web.pk}/members/{membership.pk}/", {"role": "project_admin"}).status_code
        == 403
    )
    membership.refresh_from_db()
    assert membership.role == Role.VIEWER
    client.force_login(make_user("outsider"))
    assert client.get(f"/projects/{web.pk}/").status_code == 404
    assert (
        client.post(f"/projects/{web.pk}/members/", {"username": "outsider", "role": "viewer"}).status_code
        == 404
    )
    assert b"web" not in client.get("/projects/").content


def test_event_log_views_filter_by_severity(client, make_user, web) -> None:
    from portal.events import notify

    notify("all good", project=web)
    notify("disk filling", severity="warning", project=web)
    notify("host OFF", severity="error", project=web)
    notify("elsewhere", severity="error")
    client.force_login(make_user("viewer", project=web, role=Role.VIEWER))
    messages = lambda view: [e.message for e in client.get("/events/", {"view": view}).context["page"]]  # noqa: E731
    assert messages("all") == ["host OFF", "disk filling", "all good"]
    assert messages("warnings") == ["disk filling"]
    assert messages("errors") == ["host OFF"]
    assert messages("nonsense") == messages("all")
