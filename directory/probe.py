""" "Test connection": bind with the settings given, search, and say what was found or
exactly why it failed, as sentences (never a traceback)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ldap

from . import tls_check
from .connection import GROUP_TYPES, connect, explain
from .models import DirectoryServer

SAMPLE = 10


@dataclass
class Probe:
    ok: bool
    message: str
    users: int | None = None
    users_capped: bool = False
    groups: list[str] = field(default_factory=list)


def _dns(conn: Any, base: str, filterstr: str, limit: int) -> tuple[list[str], bool]:
    """Up to ``limit`` DNs (0: the server's own limit), and whether there were more."""
    msgid = conn.search_ext(base, ldap.SCOPE_SUBTREE, filterstr, ["1.1"], sizelimit=limit)
    found: list[str] = []
    try:
        while True:
            kind, entries, _, _ = conn.result3(msgid, all=0)
            found += [dn for dn, _ in entries if dn]
            if kind == ldap.RES_SEARCH_RESULT:
                return found, False
    except ldap.SIZELIMIT_EXCEEDED:
        return found, True


def _searched(conn: Any, what: str, base: str, filterstr: str, limit: int) -> tuple[list[str], bool]:
    try:
        return _dns(conn, base, filterstr, limit)
    except ldap.NO_SUCH_OBJECT:
        raise BaseNotFound(f"The {what} search base {base} was not found in the directory.") from None


class BaseNotFound(Exception):
    pass


def test_connection(server: DirectoryServer) -> Probe:
    try:
        conn = connect(server)
    except (ldap.CONNECT_ERROR, ldap.SERVER_DOWN) as exc:
        # libldap often says only "Connect error": ask the handshake itself what went wrong.
        return Probe(False, tls_check.diagnose(server) or explain(exc, server))
    except ldap.LDAPError as exc:
        return Probe(False, explain(exc, server))
    try:
        users, capped = _searched(
            conn, "user", server.user_search_base, server.user_filter % {"user": "*"}, 0
        )
        groups, _ = _searched(
            conn, "group", server.group_search_base, GROUP_TYPES[server.group_type][1], SAMPLE
        )
    except BaseNotFound as exc:
        return Probe(False, str(exc))
    except ldap.LDAPError as exc:
        return Probe(False, explain(exc, server))
    finally:
        conn.unbind_s()
    count = f"at least {len(users)}" if capped else str(len(users))
    return Probe(
        True,
        f"Connected and bound as {server.bind_dn}: {count} users under {server.user_search_base}, "
        f"{len(groups)} groups shown from {server.group_search_base}.",
        users=len(users),
        users_capped=capped,
        groups=groups,
    )
