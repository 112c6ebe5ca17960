"""The Celery tasks that operate a deployed application (``hosts.applications.operations`` queues
them): stop, start or restart it or one of its services, add a service's replicas, remove some.

Each reads the application's row (the variables' values never travel in the broker), tells its
progress live on the application's topic as the deploy does, and leaves a problem in the row's
outcome. The application's state is left as it is: an operation is not a deploy, and a remove
that ended meanwhile must not be undone by an operation's ending.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery import shared_task
from django.template.loader import render_to_string

from hosts.applications import compose, engine_actions
from hosts.applications import engine_deploy as engine_apps
from hosts.applications.tasks import _clients, _hosts, _login, _say, topic, values_of
from hosts.fleet import engine
from hosts.models import Application, ApplicationPlacement, Host
from portal import live
from portal.queueing import enqueue

#: The states in which nothing is operated: a deploy under way owns the containers; nothing is left.
NOT_OPERABLE = (
    Application.State.QUEUED,
    Application.State.DEPLOYING,
    Application.State.REMOVED,
    Application.State.ROLLED_BACK,
)
#: The reason a replica kept after a scale down that could not remove it (its container is still there).
KEPT = "kept: its container could not be removed"
#: How an action's ending is told: "Stopping web's containers failed: ...", "web's containers stopped".
_TOLD = {
    "stop": ("Stopping", "stopped"),
    "start": ("Starting", "started"),
    "restart": ("Restarting", "restarted"),
}


def queue_action(application: Application, action: str, service: str) -> None:
    enqueue(operate_application, application.pk, action, service)


def queue_add(application: Application, service: str, replicas: list[int]) -> None:
    enqueue(add_replicas, application.pk, service, replicas)


def queue_remove(application: Application, service: str, removed: list[dict[str, Any]]) -> None:
    """``removed``: each forgotten placement's replica, host_id, memory and cpus (put back if its
    container cannot be removed)."""
    enqueue(remove_replicas, application.pk, service, removed)


def _told(application: Application, problem: str) -> None:
    """The operation's ending on the page: its problem in the outcome; a running application's
    earlier problem cleared when this one went well (a failed deploy's reason stays)."""
    rows = Application.objects.filter(pk=application.pk)
    if problem:
        rows.update(outcome=problem[:5000])
    else:
        rows.filter(state=Application.State.RUNNING).exclude(outcome="").update(outcome="")
    fresh = rows.get()
    html = render_to_string("hosts/apps/state.html", {"application": fresh})
    live.publish(topic(application), html=html, data={"state": fresh.state, "done": True})


def _operable(application_id: int) -> Application | None:
    application = Application.objects.filter(pk=application_id).first()
    return None if application is None or application.state in NOT_OPERABLE else application


def _names(hosts: Iterable[Host]) -> dict[int, str]:
    return {h.pk: h.name for h in hosts}


def _replicas(n: int) -> str:
    return f"{n} replica" if n == 1 else f"{n} replicas"


@shared_task(name="hosts.operate_application")
def operate_application(application_id: int, action: str, service: str) -> str:
    """Stop, start or restart every container of an application, or of one of its services."""
    application = _operable(application_id)
    if application is None:
        return "gone or not operable"
    hosts = _hosts(application)
    say = _say(application, _names(hosts))
    what = f"{service}'s containers" if service else "the application's containers"
    try:
        model = compose.render(application.source, values_of(application))
        with _clients(hosts) as clients:
            problems = engine_actions.operate(application.name, model, action, clients, say, service=service)
    except Exception as exc:  # noqa: BLE001 - an engine that cannot be reached, told on the page
        problems = [engine.describe_error(exc)]
    doing, done = _TOLD[action]
    if problems:
        _told(application, f"{doing} {what} failed: " + "; ".join(problems))
        return "partly"
    say(engine_apps.Progress(service, 0, "Done", f"{what} {done}"))
    _told(application, "")
    return "ok"


@shared_task(name="hosts.add_replicas")
def add_replicas(application_id: int, service: str, replicas: list[int]) -> str:
    """Create and start the replicas a scale up placed (their placements recorded already); on a
    failure, remove what it made and forget those placements: the service is as it was."""
    application = _operable(application_id)
    if application is None:
        return "gone or not operable"
    rows = list(application.placements.filter(service=service, replica__in=replicas))
    if not rows:
        return "forgotten by a scale down since"
    hosts = {h.pk: h for h in Host.objects.filter(pk__in={r.host_id for r in rows})}
    say = _say(application, _names(hosts.values()))
    placed = [(service, r.replica, r.host_id) for r in rows]
    problem = ""
    try:
        model = compose.render(application.source, values_of(application))
        with _clients(list(hosts.values())) as clients:
            try:
                engine_apps.deploy(application.name, model, placed, clients, say, login=_login(hosts, say))
            except engine_apps.DeployFailed as exc:
                # Its volumes too: the ones it lists it made, new (on a host new to the application).
                left = engine_apps.roll_back(exc.created, clients, say, volumes=True)
                problem = exc.message + ("; roll back left: " + "; ".join(left) if left else "")
    except Exception as exc:  # noqa: BLE001 - an engine that cannot be reached, told on the page
        problem = engine.describe_error(exc)
    if problem:
        application.placements.filter(service=service, replica__in=[r.replica for r in rows]).delete()
        _told(application, f"Scaling {service} up failed, the added replicas are removed: {problem}")
        return problem
    say(engine_apps.Progress(service, 0, "Done", f"{service}: {_replicas(len(rows))} added"))
    _told(application, "")
    return "ok"


@shared_task(name="hosts.remove_replicas")
def remove_replicas(application_id: int, service: str, removed: list[dict[str, Any]]) -> str:
    """Remove the containers of the replicas a scale down forgot; a replica whose container
    cannot be removed gets its placement back, so the page shows it and plans count it."""
    application = Application.objects.filter(pk=application_id).first()
    if application is None or application.state == Application.State.REMOVED:
        return "gone"
    hosts = {h.pk: h for h in Host.objects.filter(pk__in={int(r["host_id"]) for r in removed})}
    say = _say(application, _names(hosts.values()))
    pairs = [(int(r["replica"]), int(r["host_id"])) for r in removed]
    try:
        with _clients(list(hosts.values())) as clients:
            problems = engine_actions.remove_replicas(application.name, service, pairs, clients, say)
    except Exception as exc:  # noqa: BLE001 - an engine that cannot be reached, told on the page
        why = engine.describe_error(exc)
        problems = {
            replica: f"{service} replica {replica} on host {host_id}: {why}" for replica, host_id in pairs
        }
    for r in removed:
        if int(r["replica"]) in problems and int(r["host_id"]) in hosts:
            ApplicationPlacement.objects.get_or_create(
                application=application,
                service=service,
                replica=int(r["replica"]),
                defaults={
                    "host_id": int(r["host_id"]),
                    "memory": r["memory"],
                    "cpus": r["cpus"],
                    "reason": KEPT,
                },
            )
    if problems:
        _told(application, f"Scaling {service} down left: " + "; ".join(problems.values()))
        return "partly"
    say(engine_apps.Progress(service, 0, "Done", f"{service}: {_replicas(len(pairs))} removed"))
    _told(application, "")
    return "ok"
