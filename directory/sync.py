"""The periodic sync: every active user who came from the directory is looked up again
with the bind account, and their mapped roles applied, so someone taken out of a group
loses the role within one interval without signing in. Not found: deactivated. The
directory not answering changes nothing (nobody is deactivated for a network fault)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import ldap
import ldap.filter
from django_auth_ldap.backend import _LDAPUser

from . import accounts, mapping
from .backend import DirectoryBackend, current_server
from .connection import connect, explain
from .models import DirectoryAccount, DirectoryServer

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    checked: int = 0
    deactivated: int = 0
    #: Why the sync stopped (the directory did not answer, ...), or "".
    failed: str = ""

    def __str__(self) -> str:
        done = f"{self.checked} directory users checked, {self.deactivated} deactivated"
        return f"{done}; stopped: {self.failed}" if self.failed else done


def sync_all() -> SyncReport:
    report = SyncReport()
    server = current_server()
    if server is None:
        report.failed = "no directory server is enabled"
        return report
    backend = DirectoryBackend()
    backend.configure(server)
    try:
        conn = connect(server)
    except ldap.LDAPError as exc:
        report.failed = explain(exc, server)
        log.warning("directory sync not run: %s", report.failed)
        return report
    try:
        for account in DirectoryAccount.objects.filter(user__is_active=True).select_related("user"):
            try:
                if not _sync_one(server, backend, conn, account):
                    report.deactivated += 1
            except ldap.LDAPError as exc:
                report.failed = explain(exc, server)
                log.warning("directory sync stopped: %s", report.failed)
                break
            report.checked += 1
    finally:
        conn.unbind_s()
    return report


def _sync_one(
    server: DirectoryServer, backend: DirectoryBackend, conn: Any, account: DirectoryAccount
) -> bool:
    """One person; False when they were deactivated. Raises ldap.LDAPError as it comes."""
    user = account.user
    # The person is looked up here, on a connection that raises: django-auth-ldap's own
    # lookup answers "not found" for a directory that failed too, and nobody must be
    # deactivated for a network fault.
    wanted = server.user_filter % {"user": ldap.filter.escape_filter_chars(user.username)}
    found = [
        dn for dn, _ in conn.search_s(server.user_search_base, ldap.SCOPE_SUBTREE, wanted, ["1.1"]) if dn
    ]
    if len(found) != 1:
        mapping.deactivate(user, account, "no longer found in the directory")
        return False
    # django-auth-ldap's user, for its group type (nested groups) read with the bind account.
    ldap_user = _LDAPUser(backend, username=user.username)
    ldap_user._user_dn = found[0]
    try:
        accounts.refresh(server, user, ldap_user, signing_in=False)
    except accounts.AccountRefused:
        return False
    return True
