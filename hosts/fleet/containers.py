"""Containers and images on an engine: the container table of a host page, actions on
one container, its inspect (secrets hidden), and the engine's event history."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import docker

from hosts.fleet.endpoint import EngineError


@dataclass
class ContainerSummary:
    """One row of a host page's container table, from the engine's list (one call for all)."""

    id: str
    name: str
    image: str
    state: str  # created, running, paused, restarting, removing, exited, dead (or "removed")
    status: str  # the engine's words: "Up 5 minutes", "Exited (3) 2 hours ago"
    ports: list[str]
    created: int
    labels: dict[str, str]

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def running(self) -> bool:
        return self.state == "running"


def _ports(ports: list[dict[str, Any]] | None) -> list[str]:
    shown = []
    for port in ports or []:
        inside = f"{port.get('PrivatePort')}/{port.get('Type', 'tcp')}"
        shown.append(
            f"{port.get('IP', '')}:{port['PublicPort']}->{inside}" if port.get("PublicPort") else inside
        )
    return sorted(set(shown))


def summary_from_list(item: dict[str, Any]) -> ContainerSummary:
    names = item.get("Names") or [""]
    return ContainerSummary(
        id=item["Id"],
        name=names[0].lstrip("/"),
        image=item.get("Image", ""),
        state=item.get("State", ""),
        status=item.get("Status", ""),
        ports=_ports(item.get("Ports")),
        created=int(item.get("Created") or 0),
        labels=item.get("Labels") or {},
    )


def list_containers(sdk: docker.DockerClient, **filters: Any) -> list[ContainerSummary]:
    items = sdk.api.containers(all=True, filters=filters or None)
    return sorted((summary_from_list(i) for i in items), key=lambda c: (not c.running, c.name))


def container_summary(sdk: docker.DockerClient, container_id: str) -> ContainerSummary | None:
    found = list_containers(sdk, id=container_id)
    return found[0] if found else None


CONTAINER_ACTIONS = ("start", "stop", "restart", "remove")


def act(sdk: docker.DockerClient, container_id: str, action: str) -> None:
    if action not in CONTAINER_ACTIONS:
        raise EngineError(f"unknown container action {action!r}")
    api = sdk.api
    if action == "start":
        api.start(container_id)
    elif action == "stop":
        api.stop(container_id, timeout=10)
    elif action == "restart":
        api.restart(container_id, timeout=10)
    else:
        api.remove_container(container_id, force=True)


def inspect(sdk: docker.DockerClient, container_id: str, *, show_secrets: bool) -> dict[str, Any]:
    """The engine's inspect, with environment values hidden from who may not see secrets."""
    attrs = sdk.api.inspect_container(container_id)
    if not show_secrets:
        config = attrs.get("Config") or {}
        config["Env"] = [f"{line.partition('=')[0]}=********" for line in config.get("Env") or []]
    return attrs


def recent_events(sdk: docker.DockerClient, seconds: int = 3600, limit: int = 30) -> list[dict[str, Any]]:
    """The engine's own event history (it keeps about the last thousand), newest first."""
    now = int(time.time())
    stream = sdk.api.events(since=now - seconds, until=now, decode=True)
    try:
        items = [event for event in stream if event.get("Type") in {"container", "image"}]
    finally:
        with contextlib.suppress(Exception):
            stream.close()
    return list(reversed(items[-limit:]))


def list_images(sdk: docker.DockerClient) -> list[dict[str, Any]]:
    images = []
    for item in sdk.api.images():
        tags = [t for t in item.get("RepoTags") or [] if t != "<none>:<none>"]
        images.append(
            {
                "id": item["Id"].split(":", 1)[-1][:12],
                "tags": tags,
                "size": item.get("Size"),
                "created": item["Created"],
            }
        )
    return sorted(images, key=lambda i: (i["tags"] or ["~"])[0])
