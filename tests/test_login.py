"""Signing in and out, and what the trail keeps of it."""

from __future__ import annotations

import pytest

from portal.models import AuditEntry
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_wrong_password_shows_the_form_error_and_signs_nobody_in(client, make_user) -> None:
    make_user("alice")
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert b"Please enter a correct" in response.content
    assert "_auth_user_id" not in client.session
    failed = AuditEntry.objects.get(action="auth.login_failed")
    assert failed.actor_name == "alice" and failed.actor is None and failed.address == "127.0.0.1"
    assert "wrong" not in str(failed.after) + str(failed.before)


def test_sign_in_lands_on_the_dashboard_and_is_audited(client, make_user) -> None:
    alice = make_user("alice")
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert b"Dashboard" in response.content
    assert AuditEntry.objects.filter(action="auth.login", actor=alice).count() == 1


def test_sign_out_needs_a_post_and_is_audited(client, make_user) -> None:
    alice = make_user("alice")
    client.force_login(alice)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302
    assert AuditEntry.objects.filter(action="auth.logout", actor=alice).exists()


def test_csrf_is_enforced_on_sign_in(make_user) -> None:
    from django.test import Client

    make_user("alice")
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403


def test_dashboard_escapes_what_people_typed(client, make_user) -> None:
    evil = make_user("<img src=x onerror=alert(1)>")
    client.force_login(evil)
    body = client.get("/").content.decode()
    assert "<img src=x" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
