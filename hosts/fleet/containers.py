"""Containers and images on an engine: the container table of a host page, actions on
one container, its inspect (secrets hidden), pulling an image and running a new container,
and the engine's streams (events, a container's stats and logs). Every docker SDK call of
the fleet is here or in ``hosts.fleet.engine`` (connecting, facts)."""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Iterator
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


def counts(sdk: docker.DockerClient) -> tuple[int, int]:
    """Containers running, and in all."""
    items = sdk.api.containers(all=True)
    return sum(1 for i in items if i.get("State") == "running"), len(items)


def has_image(sdk: docker.DockerClient, image: str) -> bool:
    try:
        sdk.api.inspect_image(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def pull(sdk: docker.DockerClient, image: str, auth: dict[str, str] | None) -> Iterator[dict[str, Any]]:
    """The engine's progress events while it pulls ``image``; an error event raises."""
    repository, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
    for event in sdk.api.pull(repository, tag=tag or "latest", stream=True, decode=True, auth_config=auth):
        if "error" in event:
            raise docker.errors.APIError(event["error"])
        yield event


def create(sdk: docker.DockerClient, spec: dict[str, Any]) -> str:
    """Create a container from a deploy's ``spec`` (image, name, command, environment, ports,
    restart_policy, network); its id."""
    host_config = sdk.api.create_host_config(
        port_bindings=spec.get("ports") or None,
        restart_policy={"Name": spec["restart_policy"]} if spec.get("restart_policy", "no") != "no" else None,
        network_mode=spec.get("network") or "bridge",
    )
    created = sdk.api.create_container(
        spec["image"],
        command=shlex.split(spec["command"]) if spec.get("command") else None,
        name=spec.get("name") or None,
        environment=spec.get("environment") or None,
        ports=list(spec.get("ports") or {}) or None,
        host_config=host_config,
    )
    return str(created["Id"])


def start_or_remove(sdk: docker.DockerClient, container_id: str) -> None:
    """Start a new container; one that cannot start is not left behind under its name."""
    try:
        sdk.api.start(container_id)
    except docker.errors.APIError:
        sdk.api.remove_container(container_id, force=True)
        raise


def events(sdk: docker.DockerClient) -> Any:
    """The engine's live stream of container, image and volume events (close it to stop)."""
    return sdk.api.events(decode=True, filters={"type": ["container", "image", "volume"]})


def stats(sdk: docker.DockerClient, container_id: str) -> Any:
    """A container's live resource samples (close it to stop)."""
    return sdk.api.stats(container_id, stream=True, decode=True)


def logs(sdk: docker.DockerClient, container_id: str, tail: int) -> Any:
    """A container's log, its last ``tail`` lines then following (close it to stop)."""
    return sdk.api.logs(container_id, stream=True, follow=True, tail=tail, timestamps=False)
