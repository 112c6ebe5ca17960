"""One directory account, as sign-in and the sync both see it: is it disabled, which
groups is it in, and bringing the portal user in line with that."""

from __future__ import annotations

from typing import Any

import ldap

from . import mapping
from .models import DirectoryAccount, DirectoryServer


class AccountRefused(Exception):
    """The directory says this person may not sign in (the sentence says why)."""


def is_disabled(server: DirectoryServer, ldap_user: Any) -> bool:
    """Does the entry match the server's "disabled" filter? Read with the bind account."""
    if not server.disabled_filter:
        return False
    found = ldap_user.connection.search_s(ldap_user.dn, ldap.SCOPE_BASE, server.disabled_filter, ["1.1"])
    return any(dn for dn, _ in found)


def refresh(server: DirectoryServer, user: Any, ldap_user: Any, *, signing_in: bool) -> DirectoryAccount:
    """Apply what the directory says of ``ldap_user`` to ``user``: deactivated when disabled
    (raises AccountRefused), else its mapped roles. Raises ldap.LDAPError as it comes."""
    account = DirectoryAccount.objects.filter(user=user).first()
    if account is not None and not user.is_active and not account.deactivated:
        # Deactivated by an Admin, not by the directory: the directory does not undo that.
        raise AccountRefused("This account was deactivated by an Admin of the portal.")
    account = mapping.link(user, ldap_user.dn)
    if is_disabled(server, ldap_user):
        mapping.deactivate(user, account, "disabled in the directory")
        raise AccountRefused("This directory account is disabled.")
    if signing_in:
        mapping.reactivate(user, account)
    mapping.apply(user, account, mapping.grants_for(server, ldap_user.group_dns))
    return account
