"""Signing in to a running portal over HTTP, as a browser does (the login form, its CSRF
token and Referer), and preparing a database of a test's own for one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

import requests

from tests.conftest import REPO


def signed_in(url: str, username: str, password: str, timeout: float = 30) -> requests.Session:
    """A session signed in at ``url``; fails the test unless the portal took the password."""
    session = requests.Session()
    session.get(url + "/accounts/login/", timeout=timeout)
    answer = session.post(
        url + "/accounts/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": url + "/accounts/login/"},
        timeout=timeout,
    )
    assert answer.status_code == 200 and answer.url == url + "/", (answer.status_code, answer.url)
    return session


def migrate_with_admin(env: Mapping[str, str]) -> None:
    """Migrate the database ``env`` names and make its Admin (PORTAL_ADMIN_PASSWORD)."""
    for command in (["migrate", "--noinput"], ["ensure_admin"]):
        subprocess.run(
            [sys.executable, "manage.py", *command], cwd=REPO, env=dict(env), check=True, timeout=300
        )
