"""How the portal talks to the directory: django-auth-ldap's settings built from the
DirectoryServer row (read at each use, never from settings.py), TLS verified against the
row's pinned CA only, and every LDAP failure as one sentence for a person."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import ldap
from django.conf import settings
from django_auth_ldap.backend import LDAPSettings
from django_auth_ldap.config import (
    GroupOfNamesType,
    LDAPGroupType,
    LDAPSearch,
    NestedActiveDirectoryGroupType,
    NestedGroupOfNamesType,
)

from .models import DirectoryServer, GroupType

#: Seconds to reach the server and for any one operation: a directory that does not
#: answer must not hold the login page.
NETWORK_TIMEOUT = 5
OPERATION_TIMEOUT = 10

#: No setting of this name exists: django-auth-ldap reads nothing from settings.py.
_UNUSED_PREFIX = "PORTAL_DIRECTORY_NOT_A_SETTING_"

GROUP_TYPES: dict[str, tuple[type[LDAPGroupType], str]] = {
    GroupType.NESTED_AD: (NestedActiveDirectoryGroupType, "(objectClass=group)"),
    GroupType.NESTED_GROUP_OF_NAMES: (NestedGroupOfNamesType, "(objectClass=groupOfNames)"),
    GroupType.GROUP_OF_NAMES: (GroupOfNamesType, "(objectClass=groupOfNames)"),
}


def ca_file(pem: str) -> str:
    """The pinned CA as a file (libldap takes a path), named by its digest, owner-only."""
    folder = Path(settings.VAR_DIR) / "directory-ca"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(pem.encode()).hexdigest()}.pem"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.new")
        partial.write_text(pem)
        partial.chmod(0o600)
        partial.replace(path)
    return str(path)


def connection_options(server: DirectoryServer) -> dict[int, Any]:
    """Per-connection options, in order: TLS demands a certificate the pinned CA signed,
    for the host named in the URL (libldap checks the name); NEWCTX last, so the
    connection gets a TLS context of its own made from these, not the process's."""
    return {
        ldap.OPT_PROTOCOL_VERSION: ldap.VERSION3,
        ldap.OPT_REFERRALS: 0,  # AD's referrals would be followed unauthenticated
        ldap.OPT_NETWORK_TIMEOUT: NETWORK_TIMEOUT,
        ldap.OPT_TIMEOUT: OPERATION_TIMEOUT,
        ldap.OPT_X_TLS_REQUIRE_CERT: ldap.OPT_X_TLS_DEMAND,
        ldap.OPT_X_TLS_CACERTFILE: ca_file(server.ca_certificate),
        ldap.OPT_X_TLS_NEWCTX: 0,
    }


def uses_start_tls(server: DirectoryServer) -> bool:
    return server.url.lower().startswith("ldap://")


def ldap_settings(server: DirectoryServer) -> LDAPSettings:
    group_type, group_filter = GROUP_TYPES[server.group_type]
    return LDAPSettings(
        _UNUSED_PREFIX,
        {
            "SERVER_URI": server.url,
            "START_TLS": uses_start_tls(server),
            "CONNECTION_OPTIONS": connection_options(server),
            "BIND_DN": server.bind_dn,
            "BIND_PASSWORD": str(server.bind_password or ""),
            "USER_SEARCH": LDAPSearch(server.user_search_base, ldap.SCOPE_SUBTREE, server.user_filter),
            "GROUP_SEARCH": LDAPSearch(server.group_search_base, ldap.SCOPE_SUBTREE, group_filter),
            "GROUP_TYPE": group_type(),
            "USER_ATTR_MAP": {
                "first_name": server.first_name_attribute,
                "last_name": server.last_name_attribute,
                "email": server.email_attribute,
            },
            "ALWAYS_UPDATE_USER": True,
            # Groups are read fresh each time: a cached list would outlive a removal.
            "CACHE_TIMEOUT": 0,
        },
    )


def connect(server: DirectoryServer) -> Any:
    """A connection bound as the bind account (raises ldap.LDAPError)."""
    conn = ldap.initialize(server.url, bytes_mode=False)
    for option, value in connection_options(server).items():
        conn.set_option(option, value)
    if uses_start_tls(server):
        conn.start_tls_s()
    conn.simple_bind_s(server.bind_dn, str(server.bind_password or ""))
    return conn


def normalize_dn(dn: str) -> str:
    """A DN compared as the directory does: case and spaces around separators ignored."""
    try:
        return ldap.dn.dn2str(ldap.dn.str2dn(dn.strip())).lower()
    except ldap.DECODING_ERROR:
        return dn.strip().lower()


def _info(exc: ldap.LDAPError) -> str:
    detail = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    return f"{detail.get('desc', '')} {detail.get('info', '')}".strip()


def explain(exc: ldap.LDAPError, server: DirectoryServer) -> str:
    """One sentence saying why talking to the directory failed (never a traceback)."""
    info = _info(exc).lower()
    if isinstance(exc, ldap.INVALID_CREDENTIALS):
        return f"The directory refused the bind: wrong bind DN or password for {server.bind_dn}."
    if "hostname" in info or "does not match" in info:
        return (
            f"TLS failed: the certificate of {server.url} is not for that host name "
            "(use the name in its certificate)."
        )
    if any(word in info for word in ("certificate", "untrusted", "verify", "issuer", "self-signed")):
        return (
            f"TLS failed: the certificate of {server.url} is not signed by the pinned CA certificate "
            "(untrusted)."
        )
    if isinstance(exc, ldap.NO_SUCH_OBJECT):
        return "A search base was not found in the directory: check the user and group search bases."
    if isinstance(exc, ldap.INVALID_DN_SYNTAX):
        return "A DN is not valid (bind DN or a search base): check its spelling."
    if isinstance(exc, ldap.FILTER_ERROR):
        return "The user filter is not a valid LDAP filter."
    if isinstance(exc, (ldap.SERVER_DOWN, ldap.TIMEOUT)):
        return f"The directory server at {server.url} did not answer."
    if isinstance(exc, ldap.CONNECT_ERROR):
        return f"Could not start TLS with {server.url}: {_info(exc) or 'the connection failed'}."
    return f"The directory answered with an error: {_info(exc) or type(exc).__name__}."
