"""A container's row on its host's page, published when it changes (an action, a deploy,
an engine event), with the host's container counts kept current.

While an action someone asked is under way (a stop waits up to 10 s for the process), the
row says so ("Stopping…") instead of its buttons: the request marks it in the cache, which
the portal's processes share, and the task clears the mark before publishing the outcome.
The engine events in between (a stop's "kill") publish the row still in flight."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.template.loader import render_to_string

from hosts.fleet import containers as engine_containers
from hosts.fleet import engine, status
from hosts.models import Host
from portal import live

log = logging.getLogger(__name__)

#: What a row says while its action runs.
IN_FLIGHT_WORDS = {"start": "Starting…", "stop": "Stopping…", "restart": "Restarting…"}
#: The states an action leaves (a restart's cannot be told apart): once the container is in
#: another, the action has done its part, whatever the order the news arrives in.
_FROM_STATES: dict[str, frozenset[str] | None] = {
    "start": frozenset({"created", "exited", "dead"}),
    "stop": frozenset({"running", "restarting", "paused"}),
    "restart": None,
}
#: A mark outlives no action: the task gives up on the engine well before (timeout 20 s).
IN_FLIGHT_SECONDS = 60


def _key(host: Host, container_id: str) -> str:
    return f"fleet:in-flight:{host.pk}:{container_id[:12]}"


def mark_in_flight(host: Host, container_id: str, action: str) -> str:
    """Mark ``action`` under way on the container; what its row says meanwhile ("" for an
    action the row does not follow)."""
    words = IN_FLIGHT_WORDS.get(action, "")
    if words:
        cache.set(_key(host, container_id), action, IN_FLIGHT_SECONDS)
    return words


def clear_in_flight(host: Host, container_id: str) -> None:
    cache.delete(_key(host, container_id))


def in_flight(host: Host, summary: engine_containers.ContainerSummary | None) -> str:
    """What the row of ``summary`` says of an action under way ("" when none is)."""
    if summary is None:
        return ""
    try:
        action = cache.get(_key(host, summary.id))
    except Exception:  # a row is still worth publishing without it (a cache that did not answer)
        log.debug("could not read the in-flight mark of %s", summary.short_id, exc_info=True)
        return ""
    if action not in IN_FLIGHT_WORDS:
        return ""
    leaves = _FROM_STATES[action]
    return IN_FLIGHT_WORDS[action] if leaves is None or summary.state in leaves else ""


#: Who else shows a container that changed: the applications register theirs (an application's
#: page shows its containers) in hosts.registrations, so the fleet never imports them. Each gets
#: the host, the container's summary (None once removed) and the open engine client.
ContainerListener = Callable[[Host, str, "engine_containers.ContainerSummary | None", Any], None]
CONTAINER_LISTENERS: list[ContainerListener] = []


def publish_container(host: Host, container_id: str, sdk: Any = None) -> None:
    """Send a container's current row to the host page (a "removed" row when it is gone).

    ``sdk``: an open client to reuse (the watcher keeps one per host; a TLS handshake per event
    would be most of the latency)."""
    own = sdk is None
    sdk = sdk or engine.client_for(host)
    try:
        summary = engine_containers.container_summary(sdk, container_id)
        running, total = engine_containers.counts(sdk)
        for listener in CONTAINER_LISTENERS:
            try:
                listener(host, container_id, summary, sdk)
            except Exception:  # one page that could not be told must not stop the host page's row
                log.warning("a container listener failed for %s", container_id[:12], exc_info=True)
    finally:
        if own:
            sdk.close()
    # Read after the engine's answers, right before publishing: a task clears the mark before
    # it asks the engine, so an event's row read earlier cannot come out after the outcome.
    context = {
        "host": host,
        "c": summary,
        "removed_id": container_id,
        "can_operate": True,
        "live": True,
        "in_flight": in_flight(host, summary),
    }
    html = render_to_string("hosts/fleet/container_row.html", context)
    live.publish(
        status.host_topic(host), html=html, data={"container": container_id, "state": _state(summary)}
    )
    status.record_containers(host, running, total)


def _state(summary: engine_containers.ContainerSummary | None) -> str:
    return summary.state if summary is not None else "removed"
