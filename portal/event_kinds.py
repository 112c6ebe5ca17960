"""The kinds of event the portal names (``Event.kind``), with their labels.

Kept in the core because the apps that notify (hosts) and the one that alerts on
events (alerts) both need the list, and the core may import neither.
An event with no kind (``""``) is only logged: no rule can choose it.
"""

from __future__ import annotations

KINDS: dict[str, str] = {
    "host.off": "Host went OFF",
    "host.on": "Host back ON",
    "change.failed": "Change failed on a host",
    "change.rolled_back": "Change rolled back on a host",
    "change.awaiting_approval": "Change awaits approval",
    "change.applied": "Change applied",
    "drift.found": "Drift found",
    "provision.done": "Provisioned host enrolled",
    "provision.failed": "Provisioning failed",
    "app.deploy_failed": "Application deploy failed",
    "expiry.soon": "Certificate or credential expiring",
}

#: Not routed as it is recorded: each rule says how many days ahead it wants to hear
#: (alerts.expiry_check sends these, once per item, rule and expiry).
EXPIRING = "expiry.soon"

CHOICES: list[tuple[str, str]] = list(KINDS.items())


def label(kind: str) -> str:
    return KINDS.get(kind, kind or "Other")
