"""Operate a deployed application on its engines, as ``docker compose stop|start|restart [service]``
and a scale down do: its containers are found by Compose's labels (``com.docker.compose.project``,
``.service``, ``.container-number``) on each host's engine, so what the portal operates is what
``docker compose -p <project> ps`` lists there, whoever made it.

Starting goes in dependency order and stopping in the reverse order; starting the whole
application waits, as the deploy does, for a dependency that must be healthy or have completed.
Every container is tried even when another failed, and the problems come back in words. A scale
up is a deploy of the added replicas (``engine_deploy.deploy``: the same config, labels and pulls);
the removal of replicas is here. No Django; ``say`` receives the progress on the caller's thread.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hosts.applications import engine_spec as spec
from hosts.applications.engine_deploy import Clients, Progress, Say, _not_ready
from hosts.applications.engine_spec import NUMBER, PROJECT, SERVICE
from hosts.fleet.engine import describe_error

ACTIONS = ("stop", "start", "restart")
#: What each action says while it works on a container and once it is done.
_STEPS = {
    "stop": ("Stopping", "Stopped"),
    "start": ("Starting", "Started"),
    "restart": ("Restarting", "Restarted"),
}
_POLL = 0.25  # seconds between looks at a dependency being waited for


@dataclass(frozen=True)
class Found:
    """One container of the application on one engine, as its labels and state say."""

    host_id: int
    service: str
    replica: int
    container_id: str
    name: str
    running: bool


def find(project: str, clients: Clients, *, service: str = "", replica: int = 0) -> list[Found]:
    """The containers of ``project`` (of one service, one replica number) on every engine."""
    labels = [f"{PROJECT}={project}"]
    labels += [f"{SERVICE}={service}"] if service else []
    labels += [f"{NUMBER}={replica}"] if replica else []
    found = []
    for host_id, sdk in clients.items():
        for c in sdk.api.containers(all=True, filters={"label": labels}):
            given = c.get("Labels") or {}
            if given.get("com.docker.compose.oneoff") == "True":
                continue  # a `docker compose run` container: Compose's stop and start leave it too
            found.append(
                Found(
                    host_id=host_id,
                    service=given.get(SERVICE, ""),
                    replica=int(given.get(NUMBER) or 0),
                    container_id=c["Id"],
                    name=c["Names"][0].lstrip("/"),
                    running=c.get("State") == "running",
                )
            )
    return sorted(found, key=lambda f: (f.service, f.replica, f.host_id))


def _act(action: str, one: Found, clients: Clients, say: Say) -> None:
    doing, done = _STEPS[action]
    if action == "stop" and not one.running:
        return say(Progress(one.service, one.host_id, done, f"{one.name} was not running"))
    if action == "start" and one.running:
        return say(Progress(one.service, one.host_id, done, f"{one.name} is running already"))
    say(Progress(one.service, one.host_id, doing, f"{doing.lower()} {one.name}"))
    # stop and restart give the container its own grace period (stop_grace_period), as Compose does.
    getattr(clients[one.host_id].api, action)(one.container_id)
    say(Progress(one.service, one.host_id, done, f"{one.name} {done.lower()}"))


def _wait(
    service: str, dep: str, condition: str, mine: list[Found], clients: Clients, say: Say, timeout: float
) -> str:
    """Wait until every container of ``dep`` is healthy (or exited 0); why ``service`` cannot start
    if it never will be, "" once it is."""
    healthy, deadline = condition == "service_healthy", time.monotonic() + timeout
    want = "healthy" if healthy else "completed successfully"
    pending = list(mine)
    for one in pending:
        say(Progress(service, one.host_id, "Waiting", f"waiting for {one.name} to be {want}"))
    while pending:
        for one in list(pending):
            state = clients[one.host_id].api.inspect_container(one.container_id)["State"]
            why = _not_ready(state, healthy)
            if why:
                return f"{dep} on host {one.host_id}: {service} waits for it to be {want}, but {why}"
            if state.get("Status") == "exited" or (state.get("Health") or {}).get("Status") == "healthy":
                pending.remove(one)
                say(Progress(dep, one.host_id, "Healthy", f"{one.name} is {want}"))
        if pending and time.monotonic() > deadline:
            late = pending[0].host_id
            return f"{dep} on host {late}: timed out after {timeout:g} s waiting for it to be {want}"
        if pending:
            time.sleep(_POLL)
    return ""


def _dependencies_ready(
    name: str,
    services: Mapping[str, Any],
    found: list[Found],
    held: set[str],
    clients: Clients,
    say: Say,
    timeout: float,
) -> str:
    """Why ``name`` cannot start (a dependency ``held`` back, unhealthy, failed, timed out); "" when
    its depends_on conditions (started, healthy, completed) are met."""
    for dep, (condition, _) in spec.dependencies(services.get(name) or {}).items():
        if dep in held:
            return f"{name} depends on {dep}, which did not start"
        if condition != "service_started":
            why = _wait(name, dep, condition, [f for f in found if f.service == dep], clients, say, timeout)
            if why:
                return why
    return ""


def operate(
    project: str,
    model: Mapping[str, Any],
    action: str,
    clients: Clients,
    say: Say,
    *,
    service: str = "",
    health_timeout: float = 120.0,
) -> list[str]:
    """``action`` (stop, start, restart) on every container of ``project``, or of its ``service``,
    on ``clients``: in dependency order, reversed for stop. The problems left, in words."""
    if action not in ACTIONS:
        raise ValueError(f"{action!r} is not one of {', '.join(ACTIONS)}")
    found = find(project, clients, service=service)
    sequence = spec.order(model)
    sequence += sorted({f.service for f in found} - set(sequence))  # left by an older version: last
    services = model.get("services") or {}
    problems: list[str] = []
    held: set[str] = set()  # services not started: what depends on them is not started either
    for name in reversed(sequence) if action == "stop" else sequence:
        mine = [f for f in found if f.service == name]
        if not mine:
            continue
        if not service and action != "stop":
            # A whole application starts as it deployed: a dependency that must be healthy first.
            why = _dependencies_ready(name, services, found, held, clients, say, health_timeout)
            if why:
                held.add(name)
                problems.append(why)
                say(Progress(name, 0, "Failed", f"not {_STEPS[action][1].lower()}: {why}", "error"))
                continue
        for one in mine:
            try:
                _act(action, one, clients, say)
            except Exception as exc:  # noqa: BLE001 - the others are still tried; each problem reported
                held.add(name)
                problems.append(f"{one.name} on host {one.host_id}: {describe_error(exc)}")
                say(Progress(one.service, one.host_id, "Failed", problems[-1], "error"))
    return problems


def remove_replicas(
    project: str, service: str, replicas: Sequence[tuple[int, int]], clients: Clients, say: Say
) -> dict[int, str]:
    """Stop and remove the containers of ``service`` numbered ``replica`` on host ``host_id`` for
    each ``(replica, host_id)``, the highest number first (a scale down); anonymous volumes are
    kept, as Compose keeps them. What could not be removed, by replica number."""
    problems: dict[int, str] = {}
    for replica, host_id in sorted(replicas, reverse=True):
        try:
            there = find(project, {host_id: clients[host_id]}, service=service, replica=replica)
            if not there:
                gone = f"{service} replica {replica} is not there: gone already"
                say(Progress(service, host_id, "Removed", gone))
            for one in there:
                api = clients[host_id].api
                if one.running:
                    say(Progress(service, host_id, "Stopping", f"stopping {one.name}"))
                    api.stop(one.container_id)
                api.remove_container(one.container_id, force=True)
                say(Progress(service, host_id, "Removed", f"removed {one.name}"))
        except Exception as exc:  # noqa: BLE001 - the other replicas are still removed; each problem reported
            why = "no client for that host" if isinstance(exc, KeyError) else describe_error(exc)
            problems[replica] = f"{service} replica {replica} on host {host_id}: {why}"
            say(Progress(service, host_id, "Failed", problems[replica], "error"))
    return problems
