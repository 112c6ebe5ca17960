"""The people, account, directory and notification pages, each asked by each role: a role
below the one portal.access names is refused (403, or 404 where the object is in a
project it cannot see) and nothing changes; the role that may passes the check. The API's
counterpart is tests/api/test_every_endpoint_by_role.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import reverse

from alerts.models import Channel, Rule
from directory.models import DirectoryServer, GroupMapping
from portal.models import AuditEntry, Project, Role

pytestmark = pytest.mark.django_db

SIGNED_IN = {"viewer", "provisioner", "project_admin", "other_project_admin", "admin"}
ROLES = sorted(SIGNED_IN | {"anonymous"})


@dataclass(frozen=True)
class Page:
    method: str
    name: str
    args: Callable[[dict[str, Any]], list[Any]]
    allowed: frozenset[str]
    data: dict[str, str] | None = None


def _none(_world: dict[str, Any]) -> list[Any]:
    return []


def _web(world: dict[str, Any]) -> list[Any]:
    return [world["web"].pk]


ADMIN = frozenset({"admin"})
WEB_ADMINS = frozenset({"admin", "project_admin"})
PAGES = [
    Page("GET", "people", _none, ADMIN),
    Page("POST", "people", _none, ADMIN, {"username": "newcomer"}),
    Page("POST", "person-reset", lambda w: [w["target"].pk], ADMIN),
    Page("POST", "person-active", lambda w: [w["target"].pk], ADMIN, {"active": "0"}),
    Page("GET", "person-delete", lambda w: [w["target"].pk], ADMIN),
    Page("POST", "person-delete", lambda w: [w["target"].pk], ADMIN),
    Page("GET", "account", _none, frozenset(SIGNED_IN)),
    Page("GET", "directory:settings", _none, ADMIN),
    Page("POST", "directory:mapping_remove", lambda w: [w["admin_mapping"].pk], ADMIN),
    Page("POST", "directory:project_group_remove", lambda w: [w["web"].pk, w["web_mapping"].pk], WEB_ADMINS),
    Page("GET", "alerts:index", _none, frozenset(SIGNED_IN)),
    Page("GET", "alerts:global", _none, ADMIN),
    Page("POST", "alerts:global-rule-create", _none, ADMIN, {"name": "r"}),
    Page("GET", "alerts:project", _web, WEB_ADMINS),
    Page("POST", "alerts:project-rule-create", _web, WEB_ADMINS, {"name": "r"}),
    Page("GET", "alerts:channel", lambda w: [w["channel"].pk], WEB_ADMINS),
    Page("POST", "alerts:channel-delete", lambda w: [w["channel"].pk], WEB_ADMINS),
    Page("POST", "alerts:rule-delete", lambda w: [w["rule"].pk], WEB_ADMINS),
]


@pytest.fixture
def world(make_user: Any) -> dict[str, Any]:
    web, db = Project.objects.create(name="web"), Project.objects.create(name="db")
    server = DirectoryServer.objects.create(
        enabled=False,
        url="ldap://127.0.0.1:9",
        bind_dn="cn=p",
        user_search_base="o=x",
        group_search_base="o=x",
    )
    channel = Channel.objects.create(
        project=web, name="ops mail", kind=Channel.Kind.EMAIL, recipients="ops@example.com"
    )
    return {
        "web": web,
        "anonymous": None,
        "admin": make_user("admin", admin=True),
        "viewer": make_user("viewer", project=web, role=Role.VIEWER),
        "provisioner": make_user("provisioner", project=web, role=Role.PROVISIONER),
        "project_admin": make_user("pa", project=web, role=Role.PROJECT_ADMIN),
        "other_project_admin": make_user("other", project=db, role=Role.PROJECT_ADMIN),
        "target": make_user("target", project=web, role=Role.VIEWER),
        "admin_mapping": GroupMapping.objects.create(server=server, group_dn="cn=a,o=x", admin=True),
        "web_mapping": GroupMapping.objects.create(
            server=server, group_dn="cn=w,o=x", project=web, role=Role.VIEWER
        ),
        "channel": channel,
        "rule": Rule.objects.create(project=web, name="all"),
    }


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: f"{p.method} {p.name}")
def test_each_page_answers_each_role_as_access_says(
    client: Any, world: dict[str, Any], role: str, page: Page
) -> None:
    if world[role] is not None:
        client.force_login(world[role])
    url = reverse(page.name, args=page.args(world))
    entries = AuditEntry.objects.count()
    answer = client.get(url) if page.method == "GET" else client.post(url, page.data or {})
    if role == "anonymous":
        assert answer.status_code == 302 and answer["Location"].startswith(reverse("login"))
    elif role in page.allowed:
        assert answer.status_code not in (403, 404), answer.status_code
    else:
        assert answer.status_code in (403, 404), answer.status_code
    if role not in page.allowed:
        assert AuditEntry.objects.count() == entries  # refused: nothing was done
