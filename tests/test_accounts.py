"""People managed in the portal by Admins (made, disabled, deleted, a one-time link to
choose a password) and one's own account (password, browsers): issue 18, people."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from portal.models import AuditEntry, Project, Role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-long-new-password-7f3k"


def link_in(html: str) -> str:
    found = re.search(r'<code[^>]*id="password-link"[^>]*>https?://[^/]+(/[^<]+)</code>', html)
    assert found, "no one-time link on the page"
    return found[1]


def choose_password(path: str, password: str = NEW_PASSWORD) -> tuple[Client, int, str]:
    """Follow a one-time link as its receiver would, in a browser of their own."""
    browser = Client()
    landing = browser.get(path, follow=True)
    form_url = landing.redirect_chain[-1][0] if landing.redirect_chain else path
    answer = browser.post(form_url, {"new_password1": password, "new_password2": password})
    return browser, answer.status_code, answer.content.decode()


def signs_in(username: str, password: str) -> bool:
    response = Client().post("/accounts/login/", {"username": username, "password": password})
    return response.status_code == 302


def test_an_admin_adds_a_person_who_chooses_their_own_password_through_a_link_that_works_once(
    client, make_user
) -> None:
    admin = make_user("root", admin=True)
    client.force_login(admin)
    page = client.post("/people/", {"username": "dana", "name": "Dana Scully", "email": "dana@example.com"})
    assert page.status_code == 200
    html = page.content.decode()
    path = link_in(html)
    dana = get_user_model().objects.get(username="dana")
    assert (dana.first_name, dana.last_name, dana.is_superuser) == ("Dana", "Scully", False)
    assert not dana.has_usable_password()  # no password exists until she chooses one
    # The link is shown once: the list read again does not carry it.
    assert "password-link" not in client.get("/people/").content.decode()

    _, status, _ = choose_password(path)
    assert status == 302
    assert signs_in("dana", NEW_PASSWORD)
    # Used once: the same link now refuses, and changes nothing.
    browser = Client()
    again = browser.get(path, follow=True).content.decode()
    assert 'id="link-refused"' in again
    assert signs_in("dana", NEW_PASSWORD)
    actions = list(AuditEntry.objects.filter(object_id=str(dana.pk)).values_list("action", flat=True))
    assert "user.create" in actions and "user.password_change" in actions
    assert NEW_PASSWORD not in str(list(AuditEntry.objects.values("before", "after")))


def test_a_name_already_taken_or_not_a_name_is_told_and_nothing_is_made(client, make_user) -> None:
    client.force_login(make_user("root", admin=True))
    make_user("dana")
    taken = client.post("/people/", {"username": "dana"})
    assert taken.status_code == 400 and "already has an account" in taken.content.decode()
    bad = client.post("/people/", {"username": "dana scully<script>"})
    assert bad.status_code == 400 and "letters, digits" in bad.content.decode()
    assert "<script>" not in bad.content.decode().split('id="person-errors"', 1)[1]
    bad_mail = client.post("/people/", {"username": "eve", "email": "not-an-address"})
    assert bad_mail.status_code == 400 and "is not an e-mail address" in bad_mail.content.decode()
    assert get_user_model().objects.count() == 2


@pytest.mark.parametrize("role", [Role.PROJECT_ADMIN, Role.PROVISIONER, Role.VIEWER])
def test_only_admins_manage_people_a_project_admin_cannot_even_with_a_forged_id(
    client, make_user, role
) -> None:
    project = Project.objects.create(name="web")
    target = make_user("victim", project=project, role=Role.VIEWER)
    client.force_login(make_user("someone", project=project, role=role))
    assert client.get("/people/").status_code == 403
    assert client.post("/people/", {"username": "mallory", "admin": "on"}).status_code == 403
    assert client.post(f"/people/{target.pk}/reset/").status_code == 403
    assert client.post(f"/people/{target.pk}/active/", {"active": "0"}).status_code == 403
    assert client.post(f"/people/{target.pk}/delete/").status_code == 403
    target.refresh_from_db()
    assert target.is_active and target.check_password(PASSWORD)
    assert not get_user_model().objects.filter(username="mallory").exists()
    assert "/people/" not in client.get("/").content.decode()  # not offered either


def test_a_reset_signs_the_person_out_everywhere_and_only_the_link_lets_them_back(client, make_user) -> None:
    client.force_login(make_user("root", admin=True))
    dana = make_user("dana")
    hers = Client()
    hers.force_login(dana)
    assert hers.get("/").status_code == 200
    page = client.post(f"/people/{dana.pk}/reset/")
    path = link_in(page.content.decode())
    assert hers.get("/").status_code == 302  # her browser is signed out
    assert not signs_in("dana", PASSWORD)  # the old password is gone
    _, status, _ = choose_password(path)
    assert status == 302 and signs_in("dana", NEW_PASSWORD)


def test_disabling_signs_out_and_keeps_memberships_and_enabling_brings_them_back(client, make_user) -> None:
    project = Project.objects.create(name="web")
    client.force_login(make_user("root", admin=True))
    dana = make_user("dana", project=project, role=Role.PROVISIONER)
    hers = Client()
    hers.force_login(dana)
    client.post(f"/people/{dana.pk}/active/", {"active": "0"})
    dana.refresh_from_db()
    assert not dana.is_active and hers.get("/").status_code == 302 and not signs_in("dana", PASSWORD)
    assert dana.memberships.get().role == Role.PROVISIONER
    client.post(f"/people/{dana.pk}/active/", {"active": "1"})
    assert signs_in("dana", PASSWORD)
    assert list(AuditEntry.objects.filter(object_id=str(dana.pk)).values_list("action", flat=True)) == [
        "user.enable",
        "user.disable",
    ]


def test_the_portal_keeps_an_admin_no_one_disables_or_deletes_themselves(client, make_user) -> None:
    root = make_user("root", admin=True)
    other = make_user("other", admin=True)
    client.force_login(root)
    for path, data in ((f"/people/{root.pk}/active/", {"active": "0"}), (f"/people/{root.pk}/delete/", {})):
        page = client.post(path, data, follow=True).content.decode()
        assert "You cannot" in page and "yourself: ask another Admin" in page
    root.refresh_from_db()
    assert root.is_active
    # Another Admin may go: the one acting remains.
    client.post(f"/people/{other.pk}/active/", {"active": "0"})
    other.refresh_from_db()
    assert (
        not other.is_active
        and get_user_model().objects.filter(is_superuser=True, is_active=True).count() == 1
    )


def test_deleting_asks_first_says_what_they_leave_and_the_trail_keeps_their_name(client, make_user) -> None:
    project = Project.objects.create(name="web")
    client.force_login(make_user("root", admin=True))
    dana = make_user("dana", project=project, role=Role.VIEWER)
    confirm = client.get(f"/people/{dana.pk}/delete/")
    assert confirm.status_code == 200 and "web (Viewer)" in confirm.content.decode()
    assert get_user_model().objects.filter(pk=dana.pk).exists()  # asking changes nothing
    client.post(f"/people/{dana.pk}/delete/")
    assert not get_user_model().objects.filter(pk=dana.pk).exists()
    entry = AuditEntry.objects.get(action="user.delete")
    assert entry.before == {"user": "dana", "projects": ["web"]} and entry.actor_name == "root"


def test_the_people_list_shows_projects_and_roles_in_constant_queries(
    client, make_user, django_assert_max_num_queries
) -> None:
    project = Project.objects.create(name="web")
    client.force_login(make_user("root", admin=True))
    for n in range(3):
        make_user(f"p{n}", project=project, role=Role.VIEWER)
    with django_assert_max_num_queries(12) as few:
        client.get("/people/")
    for n in range(3, 30):
        make_user(f"p{n}", project=project, role=Role.PROVISIONER)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get("/people/").content.decode()
    assert "web</a>: Provisioner" in page and page.count('data-person="p') == 30


def test_changing_ones_own_password_needs_the_current_one_and_keeps_this_browser(client, make_user) -> None:
    dana = make_user("dana")
    client.force_login(dana)
    wrong = client.post(
        "/account/", {"old_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert wrong.status_code == 400 and "password was entered incorrectly" in wrong.content.decode()
    assert signs_in("dana", PASSWORD)
    done = client.post(
        "/account/", {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert done.status_code == 302
    assert client.get("/account/").status_code == 200  # still signed in here
    assert signs_in("dana", NEW_PASSWORD) and not signs_in("dana", PASSWORD)
    assert AuditEntry.objects.filter(action="user.password_change", actor_name="dana").exists()


def test_one_sees_where_one_is_signed_in_and_can_sign_out_everywhere_else(make_user) -> None:
    make_user("dana")
    laptop, phone = Client(HTTP_USER_AGENT="Laptop/1.0"), Client(HTTP_USER_AGENT="Phone/2.0")
    for browser in (laptop, phone):
        assert browser.post("/accounts/login/", {"username": "dana", "password": PASSWORD}).status_code == 302
    make_user("eve")
    Client().post("/accounts/login/", {"username": "eve", "password": PASSWORD})
    page = laptop.get("/account/").content.decode()
    rows = page.split('id="browsers"', 1)[1]
    assert "Laptop/1.0" in rows and "Phone/2.0" in rows and rows.count("<tr") == 3  # header + hers only
    assert "this browser" in rows.split("Laptop/1.0")[0].rsplit("<tr", 1)[1]
    laptop.post("/account/sign-out-elsewhere/")
    assert phone.get("/").status_code == 302
    assert laptop.get("/").status_code == 200
