"""What people ask of the fleet, as one function per action that the UI and the API both
call: each checks, records (audit) and queues (``hosts.fleet.tasks``), or raises
``portal.refused.Refused`` with the sentence both show."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404

from hosts.fleet import container_rows, engine, tasks
from hosts.fleet import containers as engine_containers
from hosts.fleet import deploy as deploy_work
from hosts.models import Deploy, Host, HostStatus
from portal import audit
from portal.fields import encrypt
from portal.queueing import enqueue
from portal.refused import Refused

#: What may be done to a container, from the host page and the API.
CONTAINER_ACTIONS = frozenset({"start", "stop", "restart", "remove"})


def _disabled(host: Host) -> str:
    return f"Host {host.name} is disabled: enable it first."


def why_no_deploy(host: Host) -> str:
    """Why ``host`` cannot take a deploy now ("" when it can): a disabled host's engine is
    not asked, and an OFF one stopped answering the portal's checks, so the deploy would
    only fail later, after the person has left its page. A degraded host (one failed check)
    or one not seen yet may well answer: its deploy is tried."""
    if not host.enabled or host.status == HostStatus.DISABLED:
        return _disabled(host)
    if host.status == HostStatus.OFF:
        return (
            f"Host {host.name} is off: its engine has not answered the portal's last checks. "
            "Deploy once it is back on."
        )
    return ""


def request_deploy(host: Host, user: Any, spec: dict[str, Any], token: str) -> Deploy:
    """Record and queue a deploy: the audit entry holds the full spec (the environment's
    keys, never its values), the task gets only the id of the Deploy holding it (values
    encrypted); the requester's My work shows it from now on."""
    refused = why_no_deploy(host)
    if refused:
        raise Refused(refused)
    environment = {str(k): str(v) for k, v in (spec.get("environment") or {}).items()}
    kept = {name: spec.get(name) for name in deploy_work.SPEC_FIELDS}
    if not kept.get("pull_only"):
        del kept["pull_only"]  # a deploy's record reads as it always has; only a pull says so
    audit.record(
        "image.pull" if kept.get("pull_only") else "container.deploy",
        obj=host,
        project=host.project,
        after={**kept, "environment_keys": sorted(environment), "token": token},
    )
    deploy = Deploy.objects.create(
        host=host,
        actor=user,
        token=token,
        spec=kept,
        environment=json.dumps(environment) if environment else "",
    )
    # Its row appears on My work when its task starts it (and on the page from the start).
    enqueue(tasks.deploy_container, deploy.pk, unqueued=lambda message: tasks.not_run(deploy, message))
    return deploy


def container_id_or_404(container_id: str) -> str:
    """Routed loosely, checked here: anything but 12 to 64 hex digits is no container."""
    if not (12 <= len(container_id) <= 64 and all(c in "0123456789abcdef" for c in container_id)):
        raise Http404("No such container.")
    return container_id


def inspect_container(host: Host, container_id: str, *, timeout: float = 4) -> dict[str, Any]:
    """The engine's inspect of a container a page is about: a 404 when the engine has no such
    container, ``Refused`` (502) with the engine's words when it does not answer."""
    container_id_or_404(container_id)
    try:
        sdk = engine.client_for(host, timeout=timeout)
        try:
            return dict(sdk.api.inspect_container(container_id))
        finally:
            sdk.close()
    except Exception as exc:  # noqa: BLE001 - told to the person
        message = engine.describe_error(exc, host.docker_url)
        if "No such container" in message:
            raise Http404("No such container.") from None
        raise Refused(message, status=502) from None


def check_container_action(host: Host, container_id: str, action: str) -> None:
    """The rules of a container action, whoever asks: a real id, a known action, and an
    enabled host (a disabled host's engine is not asked)."""
    container_id_or_404(container_id)
    if action not in CONTAINER_ACTIONS:
        raise Http404("No such action.")
    if not host.enabled:
        raise Refused(_disabled(host))


def request_container_action(host: Host, container_id: str, action: str) -> str:
    """Audit and queue a container action (``hosts.container_action``); its outcome reaches
    the host page live. Returns what the container's row says meanwhile ("Stopping…")."""
    check_container_action(host, container_id, action)
    audit.record(
        f"container.{action}", obj=host, project=host.project, after={"container": container_id[:12]}
    )
    in_flight = container_rows.mark_in_flight(host, container_id, action)
    enqueue(
        tasks.container_action,
        host.pk,
        container_id,
        action,
        unqueued=lambda _message: container_rows.clear_in_flight(host, container_id),
    )
    return in_flight


def request_recreate(
    host: Host,
    container_id: str,
    *,
    env: dict[str, str] | None = None,
    ports: dict[str, list[dict[str, str]]] | None = None,
    pull: bool = True,
) -> None:
    """Audit and queue a recreate (``hosts.recreate_container``): the newest image of the
    container's tag pulled (unless ``pull`` is off), the container made again with its
    configuration, or with ``env`` and ``ports`` as a person edited them. The audit names the
    environment's keys and the ports, never the values; the task gets them encrypted."""
    container_id_or_404(container_id)
    if not host.enabled:
        raise Refused(_disabled(host))
    after: dict[str, Any] = {"container": container_id[:12]}
    edits = ""
    if env is not None or ports is not None:
        after |= {"edited": True, "pull": pull, "env_keys": sorted(env or {}), "ports": ports or {}}
        body = {"env": [f"{k}={v}" for k, v in (env or {}).items()], "ports": ports or {}}
        edits = encrypt(json.dumps(body))
    audit.record("container.recreate", obj=host, project=host.project, after=after)
    enqueue(tasks.recreate_container, host.pk, container_id, edits, pull)


def remove_container(host: Host, container_id: str) -> None:
    """Remove a container now, not in a task: the host page the person goes back to must not
    list it, and a task could end before that page subscribes to the news that it is gone."""
    check_container_action(host, container_id, "remove")
    audit.record("container.remove", obj=host, project=host.project, after={"container": container_id[:12]})
    try:
        sdk = engine.client_for(host, timeout=10)
        try:
            engine_containers.act(sdk, container_id, "remove")
        finally:
            sdk.close()
    except Exception as exc:  # noqa: BLE001 - told to the person
        error = engine.describe_error(exc, host.docker_url)
        raise Refused(f"Container {container_id[:12]} was not removed: {error}", status=502) from None
    container_rows.publish_container(host, container_id)
