"""The directory tests' world: the lab's slapd, the portal's settings pointing at it, and
projects whose roles its groups give."""

from __future__ import annotations

from typing import Any

import pytest

from directory.models import DirectoryServer, GroupMapping, GroupType
from portal.models import Project, Role


@pytest.fixture
def ldap_lab(lab_slapd: dict[str, Any]) -> dict[str, Any]:
    return lab_slapd


def group(info: dict[str, Any], cn: str) -> str:
    return f"cn={cn},{info['groups']}"


def person(info: dict[str, Any], uid: str) -> str:
    return f"uid={uid},{info['people']}"


@pytest.fixture
def server(ldap_lab: dict[str, Any], db: None) -> DirectoryServer:
    """Enabled, over ldap:// with StartTLS, the lab CA pinned; nested groupOfNames."""
    return DirectoryServer.objects.create(
        enabled=True,
        url=ldap_lab["url"],
        ca_certificate=ldap_lab["ca_pem"],
        bind_dn=ldap_lab["bind_dn"],
        bind_password=ldap_lab["bind_password"],
        user_search_base=ldap_lab["people"],
        user_filter="(uid=%(user)s)",
        group_search_base=ldap_lab["groups"],
        group_type=GroupType.NESTED_GROUP_OF_NAMES,
        disabled_filter=ldap_lab["disabled_filter"],
    )


@pytest.fixture
def ops(db: None) -> Project:
    return Project.objects.create(name="Ops")


@pytest.fixture
def mapped(server: DirectoryServer, ops: Project, ldap_lab: dict[str, Any]) -> DirectoryServer:
    """ops -> Provisioner in Ops (alice through ops-leads, nested); portal-admins -> Admin."""
    GroupMapping.objects.create(
        server=server, group_dn=group(ldap_lab, "ops"), project=ops, role=Role.PROVISIONER
    )
    GroupMapping.objects.create(server=server, group_dn=group(ldap_lab, "portal-admins"), admin=True)
    return server


def sign_in(client: Any, username: str, password: str) -> Any:
    """Through the real login page, as a browser posts it."""
    return client.post("/accounts/login/", {"username": username, "password": password})
