"""A container's row on its host's page, published when it changes (an action, a deploy,
an engine event), with the host's container counts kept current."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from hosts.fleet import containers as engine_containers
from hosts.fleet import engine, status
from hosts.models import Host
from portal import live


def publish_container(host: Host, container_id: str, sdk: Any = None) -> None:
    """Send a container's current row to the host page (a "removed" row when it is gone).

    ``sdk``: an open client to reuse (the watcher keeps one per host; a TLS handshake per event
    would be most of the latency)."""
    own = sdk is None
    sdk = sdk or engine.client_for(host)
    try:
        summary = engine_containers.container_summary(sdk, container_id)
        running, total = engine_containers.counts(sdk)
    finally:
        if own:
            sdk.close()
    html = render_to_string(
        "hosts/fleet/container_row.html",
        {"host": host, "c": summary, "removed_id": container_id, "can_operate": True, "live": True},
    )
    live.publish(
        status.host_topic(host), html=html, data={"container": container_id, "state": _state(summary)}
    )
    status.record_containers(host, running, total)


def _state(summary: engine_containers.ContainerSummary | None) -> str:
    return summary.state if summary is not None else "removed"
