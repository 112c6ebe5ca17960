"""The applications' Celery tasks: deploy, roll back and remove, each reading its application's
row (the variables' values never travel in the broker), telling its progress live on the
application's topic, and leaving the row saying how it went."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from celery import shared_task
from django.template.loader import render_to_string
from django.utils import timezone

from hosts.applications import compose, discovery, engine_view
from hosts.applications import engine_deploy as engine_apps
from hosts.fleet import deploy as fleet_deploy
from hosts.fleet import engine
from hosts.models import Application, Host
from portal import events, live
from portal.queueing import enqueue

WORKER_STOPPED = "the worker stopped while this was running; check the hosts and try again"


def values_of(application: Application) -> dict[str, str]:
    """The variables' values, decrypted here in the worker (a deploy or an update needs them)."""
    raw = str(application.variables or "")
    return {str(k): str(v) for k, v in json.loads(raw).items()} if raw else {}


def topic(application: Application) -> str:
    return f"project:{application.project_id}:app:{application.pk}"


def _say(application: Application, names: dict[int, str]) -> engine_apps.Say:
    def say(progress: engine_apps.Progress) -> None:
        context = {"p": progress, "host": names.get(progress.host_id, "")}
        html = render_to_string("hosts/apps/progress_line.html", context)
        data = {"service": progress.service, "host": progress.host_id, "step": progress.step}
        live.publish(topic(application), html=html, data={**data, "level": progress.level})

    return say


def _end(application: Application, state: str, outcome: str = "", **fields: Any) -> None:
    Application.objects.filter(pk=application.pk).update(
        state=state, outcome=outcome[:5000], updated=timezone.now(), **fields
    )
    ended = Application.objects.get(pk=application.pk)
    html = render_to_string("hosts/apps/state.html", {"application": ended})
    # The containers as they now are, read once here for every page open on it.
    html += render_to_string(
        "hosts/apps/containers.html", {"application": ended, "engines": engine_view.read(ended)}
    )
    live.publish(topic(application), html=html, data={"state": state, "done": True})


def _deploy_failed(application: Application, reason: str) -> None:
    events.notify(
        f"Application {application.name}: deploy failed: {reason[:300]}",
        severity="error",
        obj=application,
        project=application.project_id,
        kind="app.deploy_failed",
    )


def not_run(application: Application, state: str, reason: str) -> int:
    """Fail an application left ``state`` (queued, deploying) too long: the stale-work sweep.
    Guarded: a task that moved it on since wins. 1 when failed, else 0."""
    if not Application.objects.filter(pk=application.pk, state=state).update(state=Application.State.FAILED):
        return 0
    _end(application, Application.State.FAILED, reason)
    return 1


@contextlib.contextmanager
def _clients(hosts: list[Host]) -> Iterator[dict[int, Any]]:
    clients: dict[int, Any] = {}
    try:
        for host in hosts:
            clients[host.pk] = engine.client_for(host, timeout=60)
        yield clients
    finally:
        for client in clients.values():
            client.close()


def _hosts(application: Application) -> list[Host]:
    ids = {p.host_id for p in application.placements.all()}
    ids |= {int(o["host_id"]) for o in application.created_objects.get("objects", [])}
    return list(Host.objects.filter(pk__in=ids))


def queue_deploy(application: Application, *, refresh: bool = False) -> None:
    enqueue(
        deploy_application,
        application.pk,
        refresh,
        unqueued=lambda message: _end(application, "failed", message),
    )


def queue_remove(application: Application, *, volumes: bool) -> None:
    enqueue(remove_application, application.pk, volumes)


def queue_roll_back(application: Application) -> None:
    enqueue(roll_back_application, application.pk)


def _login(hosts: dict[int, Host], say: engine_apps.Say) -> engine_apps.Login:
    def login(host_id: int, image: str) -> dict[str, str] | None:
        found = fleet_deploy.pull_credentials(hosts[host_id], image)
        if found.withheld:
            say(engine_apps.Progress("", host_id, "Pulling", found.withheld, "warning"))
        return found.auth

    return login


@shared_task(name="hosts.deploy_application")
def deploy_application(application_id: int, refresh: bool = False) -> str:
    """Deploy a recorded application (``hosts.applications.deployments.deploy``), once; with
    ``refresh``, update it (``deployments.request_update``): images pulled again, changed
    containers recreated. A failed update has nothing of its own to roll back (the containers it
    replaced are gone): its page offers the version it ran before instead."""
    taken = Application.objects.filter(pk=application_id, state=Application.State.QUEUED)
    # "updated" too (a queryset's update leaves auto_now alone): the stale-work sweep reads it.
    if not taken.update(state=Application.State.DEPLOYING, updated=timezone.now()):
        found = Application.objects.filter(pk=application_id, state=Application.State.DEPLOYING).first()
        if found is not None:  # a redelivered task: its worker died mid-deploy
            _end(found, Application.State.FAILED, WORKER_STOPPED)
        return "gone or taken"
    application = Application.objects.get(pk=application_id)
    placements = list(application.placements.all())
    hosts = {h.pk: h for h in _hosts(application)}
    say = _say(application, {pk: h.name for pk, h in hosts.items()})
    try:
        model = compose.render(application.source, values_of(application))
        with _clients(list(hosts.values())) as clients:
            created = engine_apps.deploy(
                application.name,
                model,
                [(p.service, p.replica, p.host_id) for p in placements],
                clients,
                say,
                login=_login(hosts, say),
                refresh=refresh,
            )
    except engine_apps.DeployFailed as exc:
        made = {} if refresh else _as_json(exc.created)
        _end(application, Application.State.FAILED, exc.message, created_objects=made)
        _deploy_failed(application, exc.message)
        return exc.message
    except Exception as exc:  # noqa: BLE001 - an engine that cannot be reached, told on the page
        message = engine.describe_error(exc)
        _end(application, Application.State.FAILED, message)
        _deploy_failed(application, message)
        return message
    # What an update made is the application's now, as the rest: a roll back is to a version.
    _end(application, Application.State.RUNNING, created_objects={} if refresh else _as_json(created))
    return "ok"


def _as_json(created: engine_apps.Created) -> dict[str, Any]:
    return {
        "objects": [
            {"kind": o.kind, "host_id": o.host_id, "name": o.name, "ref": o.ref, "service": o.service}
            for o in created.objects
        ]
    }


def _created(application: Application) -> engine_apps.Created:
    return engine_apps.Created(
        [engine_apps.CreatedObject(**o) for o in application.created_objects.get("objects", [])]
    )


@shared_task(name="hosts.roll_back_application")
def roll_back_application(application_id: int) -> str:
    """Remove what a failed deploy created, its new volumes included (never what it found in place)."""
    application = Application.objects.get(pk=application_id)
    hosts = _hosts(application)
    say = _say(application, {h.pk: h.name for h in hosts})
    try:
        with _clients(hosts) as clients:
            # Volumes too: a failed deploy's volumes are the ones it made, new (found ones are not listed).
            left = engine_apps.roll_back(_created(application), clients, say, volumes=True)
    except Exception as exc:  # noqa: BLE001 - an engine that cannot be reached, told on the page
        message = engine.describe_error(exc)
        _end(application, Application.State.FAILED, f"Roll back stopped: {message}")
        return message
    if left:
        _end(application, Application.State.FAILED, "Roll back left: " + "; ".join(left))
        return "partly"
    _end(application, Application.State.ROLLED_BACK, application.outcome, created_objects={})
    return "ok"


@shared_task(name="hosts.remove_application")
def remove_application(application_id: int, volumes: bool) -> str:
    application = Application.objects.get(pk=application_id)
    hosts = _hosts(application)
    say = _say(application, {h.pk: h.name for h in hosts})
    try:
        with _clients(hosts) as clients:
            left = engine_apps.remove(application.name, clients, say, volumes=volumes)
        # Its name is free once removed: a cached list of the hosts' containers would show it unmanaged.
        discovery.forget(h.pk for h in hosts)
    except Exception as exc:  # noqa: BLE001 - an engine that cannot be reached, told on the page
        message = engine.describe_error(exc)
        _end(application, application.state, f"Remove stopped: {message}")
        return message
    if left:
        _end(application, application.state, "Remove left: " + "; ".join(left))
        return "partly"
    _end(application, Application.State.REMOVED, "", created_objects={})
    return "ok"
