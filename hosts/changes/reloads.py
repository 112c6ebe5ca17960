"""Reload or restart: which changed settings a running sshd or dockerd takes on SIGHUP
(``systemctl reload``), and which need the process started again. Pure: nothing here
touches a host.

A plan's ``restarts`` lists one entry per service, in restart order: the service's name
means a restart (as every plan stored before reloads existed says), ``"reload sshd"``
means a reload. Applying and rolling back read the same list: a rollback undoes the same
diff, so it needs the same kind of action.

sshd(8): on SIGHUP sshd executes itself again and reads its configuration anew; the
sessions it already serves are their own processes and carry on. The portal still
restarts it when the listeners change (Port, ListenAddress, AddressFamily): where sshd is
socket-activated the listener is systemd's, not sshd's, and a restart is the one
action whose ``is-active`` answer covers the new listener being bound.

dockerd(8), "Configuration reload behavior": the daemon.json options it reconfigures on
SIGHUP are listed below; any other option needs a restart. On a conflict dockerd keeps its
old settings and keeps running, so a reload is verified by reading the values back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

RELOAD = "reload"

#: sshd keywords that change its listening sockets: those restart sshd.
SSHD_RESTART = frozenset({"port", "listenaddress", "addressfamily"})

#: daemon.json options dockerd reconfigures on SIGHUP (its docs, "Configuration reload behavior").
DOCKER_RELOADABLE = frozenset(
    {
        "debug",
        "labels",
        "live-restore",
        "max-concurrent-downloads",
        "max-concurrent-uploads",
        "max-download-attempts",
        "default-runtime",
        "runtimes",
        "authorization-plugins",
        "allow-nondistributable-artifacts",
        "insecure-registries",
        "registry-mirrors",
        "shutdown-timeout",
        "features",
    }
)

#: Services that have a reload at all (sysctl and iptables do what they do either way).
RELOADABLE_SERVICES = frozenset({"sshd", "docker"})


def reload_entry(service: str) -> str:
    return f"{RELOAD} {service}"


def service_of(entry: str) -> str:
    """The service a ``restarts`` entry acts on: ``"reload sshd"`` -> ``"sshd"``."""
    return entry.split(" ", 1)[1] if is_reload(entry) else entry


def is_reload(entry: str) -> bool:
    return entry.startswith(f"{RELOAD} ")


def services(entries: Iterable[str]) -> set[str]:
    return {service_of(e) for e in entries}


def restarting(entries: Iterable[str]) -> set[str]:
    """The services a list restarts (not those it only reloads)."""
    return {e for e in entries if not is_reload(e)}


def action(entry: str) -> str:
    """What applying does, as a plan shows it before approval: "reloads sshd", "restarts docker"."""
    service = service_of(entry)
    if service == "sysctl":
        return "applies sysctl"
    return f"{'reloads' if is_reload(entry) else 'restarts'} {service}"


def _sshd_directives(text: str) -> dict[str, list[str]]:
    """The global section's directives (before the first Match): keyword -> its values in order."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = re.split(r"[\s=]+", stripped, maxsplit=1)
        keyword = parts[0].lower()
        if keyword == "match":
            break
        found.setdefault(keyword, []).append(parts[1].strip() if len(parts) > 1 else "")
    return found


def sshd_restart_keys(before: str, after: str) -> list[str]:
    """The changed sshd keywords that need a restart (empty: a reload takes the change)."""
    old, new = _sshd_directives(before), _sshd_directives(after)
    return sorted(k for k in SSHD_RESTART if old.get(k) != new.get(k))


def _json_object(text: str) -> dict[str, object] | None:
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def daemon_json_restart_keys(before: str, after: str) -> list[str]:
    """The changed daemon.json options that need a restart (empty: a reload takes the change).
    A file that is not a JSON object on either side restarts: nothing to compare."""
    old, new = _json_object(before), _json_object(after)
    if old is None or new is None:
        return ["(not a JSON object)"]
    changed = {k for k in {*old, *new} if old.get(k) != new.get(k)}
    return sorted(changed - DOCKER_RELOADABLE)
