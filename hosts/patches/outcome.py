"""What a refresh stores of a host: its status row's fields (the packages, the counts) and its
pending advisories and CVEs as rows, from what was read and what applies. Pure: no queries."""

from __future__ import annotations

from typing import Any

from hosts.models import Host, PendingAdvisory, PendingCve
from hosts.models.patches import SEVERITIES
from hosts.patches import versions
from hosts.patches.applicability import HostApplicability, compatible
from hosts.patches.installed import HostPackages
from hosts.patches.records import Nevra

#: The status row's counter of each severity (HostPatchStatus).
SEVERITY_FIELDS = {name: name.lower() for name in SEVERITIES}


def _newest(installed: tuple[Nevra, ...]) -> dict[str, list[Nevra]]:
    """The newest installed package of each name and architecture, by name."""
    newest: dict[tuple[str, str], Nevra] = {}
    for nevra in installed:
        current = newest.get((nevra.name, nevra.arch))
        if current is None or versions.key(nevra) > versions.key(current):
            newest[(nevra.name, nevra.arch)] = nevra
    by_name: dict[str, list[Nevra]] = {}
    for nevra in newest.values():
        by_name.setdefault(nevra.name, []).append(nevra)
    return by_name


def _was(fix: Nevra, newest: dict[str, list[Nevra]]) -> str:
    """The installed version an advisory's package replaces ("" if none is, which applicability
    never gives: an advisory applies only over an installed package)."""
    found = [n for n in newest.get(fix.name, ()) if compatible(fix.arch, n.arch)]
    return max(found, key=versions.key).evr if found else ""


def status_fields(packages: HostPackages, result: HostApplicability) -> dict[str, Any]:
    counts = dict.fromkeys([*SEVERITY_FIELDS.values(), "security_other"], 0)
    for pending in result.of_type("security"):
        counts[SEVERITY_FIELDS.get(pending.advisory.severity, "security_other")] += 1
    return {
        "installed": [n.to_json() for n in packages.installed],
        "repositories": [
            {
                "id": repo.id,
                "name": repo.name,
                "baseurl": repo.baseurls[0] if repo.baseurls else "",
                "enabled": repo.enabled,
                "file": repo.file,
            }
            for repo in packages.repos
        ],
        "updates": [
            {
                "name": u.installed.name,
                "arch": u.installed.arch,
                "from": u.installed.evr,
                "to": u.available.evr,
                "repo": u.repo,
            }
            for u in result.updates
        ],
        "releasever": packages.releasever[:20],
        "basearch": packages.basearch[:20],
        **counts,
        "advisories": len(result.advisories),
        "pending_updates": len(result.updates),
        "reboot_suggested": result.reboot_suggested,
    }


def pending_rows(
    host: Host, packages: HostPackages, result: HostApplicability
) -> tuple[list[PendingAdvisory], list[PendingCve]]:
    newest = _newest(packages.installed)
    advisories, cves = [], []
    for pending in result.advisories:
        advisory = pending.advisory
        advisories.append(
            PendingAdvisory(
                host=host,
                advisory=advisory.id[:100],
                type=advisory.type[:20],
                severity=advisory.severity[:20],
                title=advisory.title[:300],
                issued=advisory.issued[:40],
                cves=list(advisory.cves),
                packages=[
                    {"name": p.name, "arch": p.arch, "from": _was(p, newest), "to": p.evr}
                    for p in pending.packages
                ],
                reboot_suggested=pending.reboot_suggested,
            )
        )
        # An advisory may name a CVE twice (two references): one row per (CVE, host, advisory).
        for cve in dict.fromkeys(c.strip().upper() for c in advisory.cves if c.strip()):
            cves.append(PendingCve(host=host, cve=cve[:40], advisory=advisory.id[:100]))
    return advisories, cves


def other_updates(updates: list[dict[str, Any]], advisories: list[PendingAdvisory]) -> list[dict[str, Any]]:
    """The pending updates no pending advisory speaks of (a host page's "other updates")."""
    covered = {p["name"] for a in advisories for p in a.packages}
    return [u for u in updates if u["name"] not in covered]
