"""Adding people to a project from the portal: the least power by default, a way forward
for a name that cannot sign in yet, and only Admins make people (issue 14, finding 4)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from portal.models import AuditEntry, Membership, Project, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def web() -> Project:
    return Project.objects.create(name="web")


def add(client, project, **data):  # type: ignore[no-untyped-def]
    return client.post(f"/projects/{project.pk}/members/", data)


def test_the_role_picker_starts_at_viewer_the_least_power(client, make_user, web) -> None:
    client.force_login(make_user("pa", project=web, role=Role.PROJECT_ADMIN))
    page = client.get(f"/projects/{web.pk}/").content.decode()
    form = page[page.index('id="add-member"') :]
    assert re.search(r'<option value="viewer" selected>', form)
    assert not re.search(r'<option value="project_admin" selected>', form)


def test_a_project_admin_learns_who_can_make_an_unknown_person_and_nothing_changes(
    client, make_user, web
) -> None:
    make_user("root", admin=True)
    client.force_login(make_user("pa", project=web, role=Role.PROJECT_ADMIN))
    response = add(client, web, username="newbie", role="provisioner")
    text = response.content.decode()
    assert response.status_code == 400
    assert "No one named newbie can sign in yet: Admins make people (root); ask one." in text
    assert "Create newbie" not in text
    # Forging the Admin's button changes nothing either.
    forged = add(client, web, username="newbie", role="provisioner", create="1")
    assert forged.status_code == 400
    assert not get_user_model().objects.filter(username="newbie").exists()
    assert Membership.objects.filter(project=web).count() == 1


def test_an_admin_creates_the_person_who_chooses_a_password_through_a_link_shown_once(
    client, make_user, web
) -> None:
    from tests.test_accounts import NEW_PASSWORD, choose_password, link_in, signs_in

    client.force_login(make_user("root", admin=True))
    first = add(client, web, username="newbie", role="provisioner")
    assert first.status_code == 400
    assert "Create newbie and add them" in first.content.decode()
    assert not get_user_model().objects.filter(username="newbie").exists()

    created = add(client, web, username="newbie", role="provisioner", create="1")
    text = created.content.decode()
    assert created.status_code == 200
    path = link_in(text)
    assert "shown only this once" in text
    assert Membership.objects.get(project=web, user__username="newbie").role == Role.PROVISIONER
    # No password exists until they choose one; the link is in no later page nor the trail.
    assert not get_user_model().objects.get(username="newbie").has_usable_password()
    entry = AuditEntry.objects.get(action="user.create")
    assert path not in str(entry.after) and entry.actor_name == "root"
    assert path not in client.get(f"/projects/{web.pk}/").content.decode()
    _, status, _ = choose_password(path)
    assert status == 302 and signs_in("newbie", NEW_PASSWORD)


def test_the_create_button_keeps_the_role_chosen(client, make_user, web) -> None:
    client.force_login(make_user("root", admin=True))
    text = add(client, web, username="watcher", role="viewer").content.decode()
    button = text[text.index('id="member-refused"') :]
    assert '<input type="hidden" name="role" value="viewer">' in button


def test_bad_names_and_roles_are_refused_with_a_sentence(client, make_user, web) -> None:
    client.force_login(make_user("root", admin=True))
    bad = add(client, web, username="<b>x y</b>", role="viewer", create="1")
    assert bad.status_code == 400
    text = bad.content.decode()
    assert "letters, digits and @ . + - _ only" in text and "<b>x y</b>" not in text
    assert add(client, web, username="fine", role="owner", create="1").status_code == 400
    assert not get_user_model().objects.filter(username__in=["fine", "<b>x y</b>"]).exists()


def test_a_deactivated_person_is_named_as_such_not_made_again(client, make_user, web) -> None:
    client.force_login(make_user("root", admin=True))
    gone = make_user("gone")
    gone.is_active = False
    gone.save()
    response = add(client, web, username="gone", role="viewer", create="1")
    assert response.status_code == 409
    assert "gone is deactivated" in response.content.decode()
    assert get_user_model().objects.filter(username="gone").count() == 1
    assert not Membership.objects.filter(project=web).exists()


def test_viewers_and_outsiders_cannot_add_or_make_people(client, make_user, web) -> None:
    client.force_login(make_user("viewer", project=web, role=Role.VIEWER))
    assert add(client, web, username="x", role="viewer", create="1").status_code == 403
    client.force_login(make_user("outsider"))
    assert add(client, web, username="x", role="viewer", create="1").status_code == 404
    assert not get_user_model().objects.filter(username="x").exists()
