"""A host page's images, volumes and networks kept live: when the engine says one came or went
(a pull, a tag, a removal, a prune, from the portal or from anywhere else), the page is told on
``project:P:host:H:objects`` and asks for the section again (static/hosts/fleet.js, a second
after the last such news: a prune is many events). Registered with the engines watcher in
hosts.registrations, as a follower with nothing to do at a resync."""

from __future__ import annotations

from typing import Any

from hosts.fleet import status
from hosts.models import Host
from portal import live

#: The engine events that change what the section lists (networks send none: the watcher does
#: not follow them, since every container start sends one; the portal's own network actions
#: reload the page anyway).
CHANGES = {
    "image": frozenset({"pull", "tag", "untag", "delete", "import", "load"}),
    "volume": frozenset({"create", "destroy"}),
}


def topic(host: Host) -> str:
    return f"{status.host_topic(host)}:objects"


def on_event(host: Host, event: dict[str, Any], sdk: Any) -> None:
    kind = str(event.get("Type", ""))
    if str(event.get("Action", "")).split(":")[0] in CHANGES.get(kind, ()):
        live.publish(topic(host), data={"kind": kind})


def on_resync(host: Host, sdk: Any) -> None:
    """Nothing: the page reads the section itself when it reconnects (portal:resync)."""
