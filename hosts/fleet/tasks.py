"""Celery tasks for hosts and containers: act on a container, deploy one, check a host now.

Each task reads the host afresh (the database is the truth; a task can die and be
run again), talks to the engine with pinned trust and timeouts, and publishes
what changed. Failures are published as messages people can read, never raised
into the void.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.template.loader import render_to_string

from hosts.fleet import containers as engine_containers
from hosts.fleet import deploy, engine, status
from hosts.models import DeployRequest, Host
from portal import live


def publish_container(host: Host, container_id: str, sdk: Any = None) -> None:
    """Send a container's current row to the host page (a "removed" row when it is gone).

    ``sdk``: an open client to reuse (the watcher keeps one per host; a TLS handshake per event
    would be most of the latency)."""
    own = sdk is None
    sdk = sdk or engine.client_for(host)
    try:
        summary = engine_containers.container_summary(sdk, container_id)
        running, total = _counts(sdk)
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


def _counts(sdk: Any) -> tuple[int, int]:
    items = sdk.api.containers(all=True)
    return sum(1 for i in items if i.get("State") == "running"), len(items)


@shared_task(name="hosts.container_action")
def container_action(host_id: int, container_id: str, action: str) -> str:
    host = Host.objects.filter(pk=host_id).first()
    if host is None:
        return "host gone"
    try:
        sdk = engine.client_for(host, timeout=20)
        try:
            engine_containers.act(sdk, container_id, action)
        finally:
            sdk.close()
        publish_container(host, container_id)
    except Exception as exc:  # noqa: BLE001 - shown to the person who asked
        message = engine.describe_error(exc, host.docker_url)
        html = render_to_string(
            "hosts/fleet/container_error.html",
            {"container_id": container_id, "action": action, "message": message},
        )
        live.publish(status.host_topic(host), html=html, data={"container": container_id, "error": message})
        return message
    return "ok"


@shared_task(name="hosts.deploy_container")
def deploy_container(deploy_id: int) -> str:
    """Run a recorded deploy (``deploy.request``): its spec, secrets included, is read here,
    never carried in the task's arguments."""
    request = DeployRequest.objects.select_related("host__project").filter(pk=deploy_id).first()
    if request is None:
        return "deploy gone"
    host, token = request.host, request.token
    try:
        from portal import work_views  # the requester's My work: the deploy running, then how it ended

        work_views.deploy_started(host, token)
        outcome = deploy.run(host, deploy.spec_of(request), f"{status.host_topic(host)}:deploy:{token}")
        work_views.deploy_finished(host, token, outcome)
    finally:
        # The environment's values now live in the container only.
        request.delete()
    return outcome


@shared_task(name="hosts.check_host")
def check_host(host_id: int) -> str:
    host = Host.objects.filter(pk=host_id, enabled=True).first()
    if host is None:
        return "not checked"
    try:
        sdk = engine.client_for(host)
        try:
            facts = engine.read_facts(sdk)
        finally:
            sdk.close()
    except Exception as exc:  # noqa: BLE001
        status.record_failure(host, engine.describe_error(exc, host.docker_url))
        return "failed"
    status.record_success(host, facts)
    return "ok"
