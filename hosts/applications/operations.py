"""Operating a deployed application, the rules the pages call: stop, start or restart it or one of
its services, and scale a service to a number of replicas. Each is refused while the application
is being deployed or once it is gone, audited, then queued (``hosts.applications.operation_tasks``):
nothing reaches an engine here.

A scale up is planned as the deploy plans (``placement.plan`` on the project's pool, with the
service's rules: spread, max_per_host, tags, memory, CPUs), counting the replicas already placed,
and is refused before anything starts when it cannot fit, naming the rule, or when it would take
the project over its application quota (``hosts.applications.quota``). Its placements are
recorded at once, so the next plan counts what they reserve; a scale down forgets the highest
numbered replicas' placements at once, and its task removes their containers.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from django.db import transaction

from hosts.applications import (
    compose,
    engine_actions,
    engine_spec,
    operation_tasks,
    placement,
    pool,
    quota,
    tasks,
)
from hosts.models import Application, ApplicationPlacement
from portal import access, audit
from portal.refused import Refused

ACTIONS = engine_actions.ACTIONS
MAX_REPLICAS = 20


def _check_operable(application: Application, doing: str) -> None:
    state = application.state
    if state in (Application.State.QUEUED, Application.State.DEPLOYING):
        raise Refused(f"{application} is still being deployed; {doing} it when the deploy has ended.")
    if state == Application.State.REMOVED:
        raise Refused(f"{application} is removed: it has nothing left to {doing}.")
    if state == Application.State.ROLLED_BACK:
        raise Refused(f"{application}'s deploy was rolled back: it has nothing left to {doing}.")


def _model(application: Application) -> dict[str, Any]:
    """The Compose model deployed, its variables filled in again (what a scale plans from)."""
    try:
        return compose.render(application.source, tasks.values_of(application))
    except compose.ComposeInvalid as exc:
        raise Refused(
            f"{application}'s Compose file cannot be read again.", details=[p.message for p in exc.problems]
        ) from None


def request_action(user: Any, application: Application, action: str, service: str = "") -> None:
    """Stop, start or restart every container of the application, or of ``service``, in a task."""
    access.require(user, "app.deploy", application.project_id)
    if action not in ACTIONS:
        raise Refused(f"{action!r} is not one of {', '.join(ACTIONS)}.", status=400)
    _check_operable(application, action)
    if service and not application.placements.filter(service=service).exists():
        raise Refused(f"{application} has no service {service!r}.", field="service", status=400)
    audit.record(
        f"app.{action}",
        obj=application,
        project=application.project,
        actor=user,
        after={"service": service or "every service"},
    )
    operation_tasks.queue_action(application, action, service)


def request_scale(user: Any, application: Application, service: str, replicas: int) -> None:
    """Run ``replicas`` of ``service``: the added ones placed now (refused when they cannot fit,
    naming the rule) and created in a task; the highest-numbered ones removed when fewer."""
    access.require(user, "app.deploy", application.project_id)
    _check_operable(application, "scale")
    if application.state == Application.State.FAILED:
        raise Refused(f"{application}'s deploy failed: roll it back or remove it before scaling it.")
    if application.adopted:
        # Its Compose file is the portal's sketch (images only): new replicas made from it would
        # not be the containers Compose made.
        raise Refused(
            f"{application} was adopted: the portal knows its images, not their settings; it cannot scale it."
        )
    if not 1 <= replicas <= MAX_REPLICAS:
        raise Refused(
            f"A service runs 1 to {MAX_REPLICAS} replicas, not {replicas}.", field="replicas", status=400
        )
    model = _model(application)
    svc = (model.get("services") or {}).get(service)
    if svc is None:
        raise Refused(f"{application} has no service {service!r}.", field="service", status=400)
    if svc.get("container_name") and replicas > 1:
        raise Refused(
            f"{service} has a fixed container_name ({svc['container_name']}): it runs one replica only.",
            field="replicas",
            status=400,
        )
    with transaction.atomic():
        # Locked: two scales at once would each count the same placements and take the same numbers.
        locked = Application.objects.select_for_update().get(pk=application.pk)
        _check_operable(locked, "scale")
        rows = list(locked.placements.filter(service=service).select_related("host").order_by("replica"))
        if len(rows) == replicas:
            raise Refused(f"{service} runs {replicas} replica{'s' if replicas != 1 else ''} already.")
        if replicas > len(rows):
            added = _place(locked, model, service, replicas, rows)
            operation_tasks.queue_add(locked, service, [number for number, _ in added])
            moved = {"added": [f"{service}-{number} on {host}" for number, host in added]}
        else:
            gone = rows[replicas:]  # the highest numbers go, as Compose scales down
            ApplicationPlacement.objects.filter(pk__in=[p.pk for p in gone]).delete()
            removed = [
                {"replica": p.replica, "host_id": p.host_id, "memory": p.memory, "cpus": p.cpus} for p in gone
            ]
            operation_tasks.queue_remove(locked, service, removed)
            moved = {"removed": [f"{service}-{p.replica} on {p.host.name}" for p in gone]}
        audit.record(
            "app.scale",
            obj=locked,
            project=locked.project,
            actor=user,
            after={"service": service, "from": len(rows), "to": replicas, **moved},
        )


def _place(
    application: Application,
    model: dict[str, Any],
    service: str,
    replicas: int,
    rows: list[ApplicationPlacement],
) -> list[tuple[int, str]]:
    """Plan and record the replicas after ``rows`` (refused when they cannot fit), numbered on
    from the highest; each one's number and host."""
    try:
        need = next(n for n in placement.needs_from(model) if n.service == service)
    except ValueError as exc:
        raise Refused(str(exc), status=400) from None
    existing = {service: dict(Counter(r.host_id for r in rows))}
    need = dataclasses.replace(need, replicas=replicas)
    plan = placement.plan([need], pool.candidates(application.project_id), existing=existing)
    if not plan.ok:
        raise Refused(f"The scale does not fit: {plan.failure}", field="replicas", status=409)
    top = max((r.replica for r in rows), default=0)
    added = [
        ApplicationPlacement(
            application=application,
            service=service,
            replica=top + i,
            host_id=p.host_id,
            memory=need.memory,
            cpus=need.cpus,
            reason=p.reason[:300],
        )
        for i, p in enumerate(plan.placements, 1)
    ]
    for one in added:
        try:  # what the deploy would refuse, refused now: before anything starts
            engine_spec.plan(application.name, model, service, one.replica, one.host_id)
        except (ValueError, TypeError, KeyError) as exc:
            raise Refused(f"{service} cannot be deployed: {exc}", status=400) from None
    # In the scale's transaction, after the application's lock: the project's is taken second.
    quota.check(application.project_id, [(need, len(added))])
    ApplicationPlacement.objects.bulk_create(added)
    return [(one.replica, p.host) for one, p in zip(added, plan.placements, strict=True)]
