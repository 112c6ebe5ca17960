"""Deploying a template, the rules the pages and the API both call: propose (fill in the
variables, check the file again, plan where each replica goes), then deploy what was proposed
(record the application and its placements, queue the deploy task), and remove.

Nothing reaches an engine before the plan fits: a plan that cannot fit is refused with the
rule that failed. The variables' values are kept encrypted on the application (an update
needs them again) and are never shown back, in the pages, the API or the audit trail.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from hosts.applications import catalog, compose, placement, pool, quota, tasks
from hosts.models import Application, ApplicationPlacement, AppTemplate, TemplateVersion
from portal import access, audit
from portal.refused import Refused

#: A Compose project name, as Compose accepts it (lowercase letters, digits, dashes, underscores).
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Proposal:
    """What a deploy would do: the file with its variables filled in, and where each replica goes."""

    template: AppTemplate
    version: TemplateVersion
    name: str
    values: dict[str, str]
    model: dict[str, Any]
    needs: list[placement.Need]
    plan: placement.Plan


def _check_name(name: str) -> str:
    name = name.strip()
    if not NAME.match(name):
        raise Refused(
            "A name of lowercase letters, digits, dashes and underscores, starting with a letter or digit "
            "(Compose's project names), up to 63 characters.",
            field="name",
            status=400,
        )
    if Application.objects.filter(name=name).exclude(state=Application.State.REMOVED).exists():
        raise Refused(f"An application named {name!r} is deployed already.", field="name", status=409)
    return name


def propose(
    user: Any,
    template: AppTemplate,
    *,
    name: str,
    values: dict[str, str],
    version: int | None = None,
    one_host: str = "",
) -> Proposal:
    access.require(user, "app.deploy", template.project_id)
    chosen = catalog.version_of(template, version)
    name = _check_name(name)
    try:
        model = compose.render(chosen.source, values)
    except compose.ComposeInvalid as exc:
        raise Refused(
            "The template cannot be deployed with these values.",
            field="variables",
            status=400,
            details=[p.message for p in exc.problems],
        ) from None
    try:
        needs = placement.needs_from(model)
    except ValueError as exc:
        raise Refused(str(exc), field="variables", status=400) from None
    plan = placement.plan(needs, pool.candidates(template.project_id), one_host=one_host)
    if plan.ok:  # told now, with the plan, rather than at the deploy
        with transaction.atomic():
            quota.check(template.project_id, [(n, n.replicas) for n in needs])
    return Proposal(template, chosen, name, dict(values), model, needs, plan)


def deploy(user: Any, proposal: Proposal) -> Application:
    """Record the application with its placements and queue its deploy (``hosts.deploy_application``)."""
    if not proposal.plan.ok:
        raise Refused(f"The plan does not fit: {proposal.plan.failure}", status=409)
    template = proposal.template
    needs = {n.service: n for n in proposal.needs}
    try:
        with transaction.atomic():
            # Again, locked: another deploy may have taken the quota since the proposal.
            quota.check(template.project_id, [(n, n.replicas) for n in proposal.needs])
            application = Application.objects.create(
                project_id=template.project_id,
                name=proposal.name,
                template=template,
                version=proposal.version,
                source=proposal.version.source,
                variables=json.dumps(proposal.values) if proposal.values else "",
                created_by=user,
            )
            ApplicationPlacement.objects.bulk_create(
                ApplicationPlacement(
                    application=application,
                    service=p.service,
                    replica=p.replica,
                    host_id=p.host_id,
                    memory=needs[p.service].memory,
                    cpus=needs[p.service].cpus,
                    reason=p.reason[:300],
                )
                for p in proposal.plan.placements
            )
    except IntegrityError:  # the same name deployed by someone else since the proposal
        raise Refused(f"An application named {proposal.name!r} is deployed already.", field="name") from None
    audit.record(
        "app.deploy",
        obj=application,
        project=template.project,
        actor=user,
        after={
            "template": template.name,
            "version": proposal.version.number,
            "variables": sorted(proposal.values),  # their names: the values may be secrets
            "placements": [f"{p.service}-{p.replica} on {p.host}" for p in proposal.plan.placements],
        },
    )
    tasks.queue_deploy(application)
    return application


def visible(user: Any) -> Any:
    return Application.objects.filter(project__in=access.projects(user, "app.view")).select_related(
        "project", "template", "version"
    )


def request_remove(user: Any, application: Application, *, volumes: bool) -> None:
    """Remove the application's containers and networks (its volumes only when asked), in a task;
    once removed, the volumes it kept, when asked."""
    access.require(user, "app.deploy", application.project_id)
    if application.state in (Application.State.QUEUED, Application.State.DEPLOYING):
        raise Refused(f"{application} is still being deployed; remove it when the deploy has ended.")
    if application.state == Application.State.REMOVED:
        if not volumes:
            raise Refused(f"{application} is removed already.")
        # Its volumes are found by its Compose project name: a newer application of that name
        # owns whatever carries it now.
        if (
            Application.objects.filter(name=application.name)
            .exclude(state=Application.State.REMOVED)
            .exists()
        ):
            raise Refused(
                f"The name {application.name} is in use by another application now: its volumes are that "
                "application's. Remove them from there."
            )
    audit.record(
        "app.remove", obj=application, project=application.project, actor=user, after={"volumes": volumes}
    )
    tasks.queue_remove(application, volumes=volumes)


def request_roll_back(user: Any, application: Application) -> None:
    """Remove what a failed deploy created, in a task."""
    access.require(user, "app.deploy", application.project_id)
    if application.state != Application.State.FAILED or not application.created_objects.get("objects"):
        raise Refused(f"{application} has no failed deploy to roll back.")
    audit.record("app.roll_back", obj=application, project=application.project, actor=user)
    tasks.queue_roll_back(application)


def request_update(user: Any, application: Application, version: int | None = None) -> TemplateVersion:
    """Move a running application to ``version`` of its template (the newest when None; the one
    it ran before for a roll back): every image pulled again, and only the containers whose
    service changed, or whose tag now names a newer image, recreated, one at a time."""
    access.require(user, "app.deploy", application.project_id)
    # A failed one too: after a failed update, going back to the version before is the way out.
    if (
        application.state not in (Application.State.RUNNING, Application.State.FAILED)
        or not application.template
    ):
        raise Refused(f"Only a deployed application from a template is updated; {application} is not now.")
    if application.created_objects.get("objects") and application.state == Application.State.FAILED:
        raise Refused(f"{application}'s deploy failed: roll back what it created, or remove it, first.")
    target = catalog.version_of(application.template, version)
    try:
        model = compose.render(target.source, tasks.values_of(application))
    except compose.ComposeInvalid as exc:
        raise Refused(
            f"v{target.number} cannot be deployed with this application's values.",
            details=[p.message for p in exc.problems],
            status=400,
        ) from None
    try:
        needs = {n.service: n for n in placement.needs_from(model)}
    except ValueError as exc:
        raise Refused(str(exc), status=400) from None
    wanted = {service: need.replicas for service, need in needs.items()}
    running: dict[str, int] = {}
    for service in application.placements.values_list("service", flat=True):
        running[service] = running.get(service, 0) + 1
    if wanted != running:
        said = ", ".join(f"{s} x{n}" for s, n in sorted(wanted.items()))
        raise Refused(
            f"v{target.number} runs other services or replicas ({said}) than {application} does: "
            "scale it first, or deploy that version as a new application."
        )
    with transaction.atomic():
        # The application first, then (in the check) its project: the order a scale locks them in.
        locked = Application.objects.select_for_update().get(pk=application.pk)
        if locked.state not in (Application.State.RUNNING, Application.State.FAILED):
            raise Refused(f"{application} is being deployed or removed since: try again when it has ended.")
        rows = list(locked.placements.all())
        # Its services may reserve more (or less) in that version: counted against the quota as
        # the replicas it runs, what they reserve now given back.
        quota.check(
            locked.project_id,
            [(need, need.replicas) for need in needs.values()],
            freeing=quota.Usage(len(rows), sum(r.memory for r in rows), sum(r.cpus for r in rows)),
        )
        for row in rows:
            row.memory, row.cpus = needs[row.service].memory, needs[row.service].cpus
        ApplicationPlacement.objects.bulk_update(rows, ["memory", "cpus"])
        before = locked.version
        audit.record(
            "app.update",
            obj=locked,
            project=locked.project,
            actor=user,
            before={"version": before.number if before else None},
            after={"version": target.number},
        )
        Application.objects.filter(pk=application.pk).update(
            previous_version=before,
            version=target,
            source=target.source,
            state=Application.State.QUEUED,
            outcome="",
            updated=timezone.now(),  # update() leaves auto_now alone: the stale-work sweep reads it
        )
    application.refresh_from_db()
    tasks.queue_deploy(application, refresh=True)
    return target
