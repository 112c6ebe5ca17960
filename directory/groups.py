"""Finding a group in the directory by its name or DN, for a Project admin who gives a
directory group a role in their project: they know the group's name ("ops"), rarely its
DN, and a group that is not there must be said so now, not found out at the next sync."""

from __future__ import annotations

import ldap
import ldap.filter

from portal.refused import Refused

from .connection import GROUP_TYPES, connect, explain
from .models import DirectoryServer


def find(server: DirectoryServer, name_or_dn: str) -> str:
    """The DN of the one group named (cn) or located at ``name_or_dn``; refuses otherwise."""
    wanted = name_or_dn.strip()
    if not wanted:
        raise Refused("Enter the group's name or DN.", field="group", status=400)
    kind = GROUP_TYPES[server.group_type][1]
    if "=" in wanted:
        base, scope, filterstr = wanted, ldap.SCOPE_BASE, kind
    else:
        base, scope = server.group_search_base, ldap.SCOPE_SUBTREE
        filterstr = f"(&{kind}(cn={ldap.filter.escape_filter_chars(wanted)}))"
    try:
        conn = connect(server)
    except ldap.LDAPError as exc:
        raise Refused(f"The directory could not be asked: {explain(exc, server)}", status=502) from None
    try:
        found = [dn for dn, _ in conn.search_ext_s(base, scope, filterstr, ["1.1"], sizelimit=2) if dn]
    except (ldap.NO_SUCH_OBJECT, ldap.INVALID_DN_SYNTAX):
        found = []
    except ldap.SIZELIMIT_EXCEEDED:
        raise Refused(
            f"More than one group is named {wanted}: enter its DN instead.", field="group", status=400
        ) from None
    except ldap.LDAPError as exc:
        raise Refused(f"The directory could not be asked: {explain(exc, server)}", status=502) from None
    finally:
        conn.unbind_s()
    if not found:
        raise Refused(f"The directory has no group {wanted}.", field="group", status=400)
    if len(found) > 1:
        raise Refused(
            f"More than one group is named {wanted}: enter its DN instead.", field="group", status=400
        )
    return str(found[0])
