"""The people, account, directory, single sign-on and notification pages, each asked by each role: a role
below the one portal.access names is refused (403, or 404 where the object is in a
project it cannot see) and nothing changes; the role that may passes the check. The API's
counterpart is tests/api/test_every_endpoint_by_role.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.urls import reverse

from alerts.models import Channel, Rule
from directory.models import DirectoryServer, GroupMapping
from portal.models import AuditEntry, Project, Role
from sso.models import GroupMapping as SsoMapping
from sso.models import Provider

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
    Page("GET", "sso:settings", _none, ADMIN),
    Page("POST", "sso:test", _none, ADMIN),
    Page("POST", "sso:mapping_add", _none, ADMIN, {"group": "ops", "target": "admin"}),
    Page("POST", "sso:mapping_remove", lambda w: [w["sso_mapping"].pk], ADMIN),
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
        "sso_mapping": SsoMapping.objects.create(
            provider=Provider.objects.create(issuer="https://127.0.0.1:9/o", client_id="portal"),
            group="admins",
            admin=True,
        ),
        "channel": channel,
        "rule": Rule.objects.create(project=web, name="all"),
    }


@pytest.mark.parametrize("role", ROLES)
def test_each_page_answers_each_role_as_access_says(client: Any, world: dict[str, Any], role: str) -> None:
    if world[role] is not None:
        client.force_login(world[role])
    wrong = []
    for page in PAGES:
        # Each page on the same world: what an allowed action changed is rolled back.
        with transaction.atomic():
            url = reverse(page.name, args=page.args(world))
            entries = AuditEntry.objects.count()
            answer = client.get(url) if page.method == "GET" else client.post(url, page.data or {})
            if role == "anonymous":
                ok = answer.status_code == 302 and answer["Location"].startswith(reverse("login"))
            elif role in page.allowed:
                ok = answer.status_code not in (403, 404)
            else:  # refused, and nothing was done
                ok = answer.status_code in (403, 404) and AuditEntry.objects.count() == entries
            if not ok:
                wrong.append(f"{page.method} {page.name}: {answer.status_code}")
            transaction.set_rollback(True)
    assert wrong == []
