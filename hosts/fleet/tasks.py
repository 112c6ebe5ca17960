"""Celery tasks for hosts and containers: act on a container, deploy one, check a host now.

Each task reads the host afresh (the database is the truth; a task can die and be
run again), talks to the engine with pinned trust and timeouts, and publishes
what changed. Failures are published as messages people can read, never raised
into the void.
"""

from __future__ import annotations

import json

from celery import shared_task
from django.template.loader import render_to_string

from hosts.fleet import container_rows, deploy, engine, recreate, status, work
from hosts.fleet import containers as engine_containers
from hosts.models import Deploy, Host
from portal import audit, live
from portal.fields import decrypt


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
            # Done either way: the row shows what the engine says from now on.
            container_rows.clear_in_flight(host, container_id)
        container_rows.publish_container(host, container_id)
    except Exception as exc:  # noqa: BLE001 - shown to the person who asked
        container_rows.clear_in_flight(host, container_id)
        message = engine.describe_error(exc, host.docker_url)
        _tell_failure(host, container_id, action, message)
        return message
    return "ok"


def _tell_failure(host: Host, container_id: str, action: str, message: str) -> None:
    html = render_to_string(
        "hosts/fleet/container_error.html",
        {"container_id": container_id, "action": action, "message": message},
    )
    live.publish(status.host_topic(host), html=html, data={"container": container_id, "error": message})


@shared_task(name="hosts.recreate_container")
def recreate_container(host_id: int, container_id: str, edits: str = "", pull: bool = True) -> str:
    """Pull the newest image of the container's tag (with the registry's login, as a deploy) and
    make it again with its configuration (``hosts.fleet.recreate``); the outcome to the host
    page and the audit trail. ``edits``: a person's environment and ports (``recreate.Edits``
    as JSON, encrypted: the environment holds secrets, and the broker keeps messages)."""
    host = Host.objects.select_related("project").filter(pk=host_id).first()
    if host is None:
        return "host gone"
    new = ""
    try:
        sdk = engine.client_for(host, timeout=60)
        try:

            def pulled(image: str) -> None:
                login = deploy.pull_credentials(host, image)
                for _ in engine_containers.pull(sdk, image, login.auth):
                    pass

            changes = recreate.Edits(**json.loads(decrypt(edits))) if edits else None
            new = recreate.run(sdk, container_id, pulled if pull else None, changes)
        finally:
            sdk.close()
        outcome = "ok"
    except Exception as exc:  # noqa: BLE001 - shown to the person who asked
        outcome = engine.describe_error(exc, host.docker_url)
        _tell_failure(host, container_id, "recreate", outcome)
    audit.record(
        "container.recreate_result",
        obj=host,
        project=host.project,
        after={"container": container_id[:12], "new": new[:12], "outcome": outcome[:1000]},
    )
    container_rows.publish_container(host, container_id)
    if new:
        container_rows.publish_container(host, new)
    return outcome


#: Why a deploy found "running" by its redelivered message (or the sweep) failed.
WORKER_STOPPED = "the worker stopped while this was running; check the host and try again"


def not_run(found: Deploy, message: str) -> bool:
    """End ``found`` as failed with ``message`` unless it has ended already (it was never
    queued, or its worker died): its environment cleared, audited, on My work."""
    ended = Deploy.objects.filter(pk=found.pk, state__in=[Deploy.State.QUEUED, Deploy.State.RUNNING]).update(
        state=Deploy.State.ERROR
    )
    if ended:
        found.refresh_from_db()
        work.deploy_finished(found, message)
    return bool(ended)


@shared_task(name="hosts.deploy_container")
def deploy_container(deploy_id: int) -> str:
    """Run a recorded deploy (``hosts.fleet.services.request_deploy``): its spec, secrets
    included, is read here, never carried in the task's arguments. Run once: a redelivered
    task finds it no longer queued (and fails it if it is still "running": its worker died)."""
    if not Deploy.objects.filter(pk=deploy_id, state=Deploy.State.QUEUED).update(state=Deploy.State.RUNNING):
        found = Deploy.objects.select_related("host__project", "actor").filter(pk=deploy_id).first()
        if found is not None and found.state == Deploy.State.RUNNING and not_run(found, WORKER_STOPPED):
            return WORKER_STOPPED
        return "deploy gone or taken"
    found = Deploy.objects.select_related("host__project", "actor").get(pk=deploy_id)
    outcome = "the deploy task stopped before it ended"
    try:
        work.publish_deploy(found)  # the requester's My work: running
        outcome = deploy.run(
            found.host, deploy.spec_of(found), f"{status.host_topic(found.host)}:deploy:{found.token}"
        )
    finally:
        # The environment's values now live in the container only.
        work.deploy_finished(found, outcome)
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
