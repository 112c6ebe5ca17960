"""Patching as a change (issue 19), the service layer the UI and the API both call: plan a
change over some hosts of a project, submit it, approve or reject it, apply it (now, or at
the next opening of the project's maintenance windows), resume it after a pause, cancel it.

Every refusal is a ``Refused`` with a sentence for a person and its status (403 not allowed,
404 not there for this person, 409 not in this state, 400 bad input); every action is
recorded in the audit trail. Applying is one Celery task per host, batch by batch
(hosts.patches.tasks): ``advance`` moves a change on when a host ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from hosts.models import (
    Host,
    HostPatchStatus,
    PatchChange,
    PatchChangeStatus,
    PatchRun,
    PatchRunState,
    Tag,
)
from hosts.patches import cache, news, services, windows
from hosts.patches.applicability import RepoIndex
from hosts.patches.plan import HostPatchPlan, Selection, plan_host
from hosts.patches.records import Nevra, RepoMetadata
from hosts.patches.tasks import advance as advance  # the host tasks call it; re-exported for callers
from hosts.patches.tasks import queue_next_batch
from portal import access, audit
from portal.models import Project
from portal.refused import Refused

NOT_FOUND = "No such patch change."
#: The most hosts one batch may take, and the longest a snapshot may be kept (30 days).
MAX_BATCH = 500
MAX_WINDOW_HOURS = 720
#: What may still be cancelled: nothing of it is running.
CANCELLABLE = (
    PatchChangeStatus.PLANNED,
    PatchChangeStatus.AWAITING_APPROVAL,
    PatchChangeStatus.APPROVED,
    PatchChangeStatus.SCHEDULED,
    PatchChangeStatus.PAUSED,
)


def visible(user: Any) -> QuerySet[PatchChange]:
    """The patch changes of the projects ``user`` sees changes of (Admins: all)."""
    return PatchChange.objects.filter(project__in=access.projects(user, "change.view"))


def get(user: Any, change_id: int | str, action: str = "change.plan") -> PatchChange:
    """The change ``change_id`` for ``user``: 404 unless they see it, 403 when they see it but
    may not do ``action`` in its project."""
    if not str(change_id).isdigit():
        raise Refused(NOT_FOUND, status=404)
    change = visible(user).select_related("project").filter(pk=int(change_id)).first()
    if change is None:
        raise Refused(NOT_FOUND, status=404)
    if not access.can(user, action, change.project_id):
        raise Refused("You may not do that with this patch change.", status=403)
    return change


def _state(change: PatchChange) -> str:
    return change.get_status_display().lower()


def _locked(change: PatchChange) -> PatchChange:
    return PatchChange.objects.select_for_update().select_related("project").get(pk=change.pk)


def _require(user: Any, action: str, change: PatchChange, sentence: str) -> None:
    if not access.can(user, action, change.project_id):
        raise Refused(sentence, status=403)


# ------------------------------------------------------------------ planning


def _project(user: Any, project_id: int | str) -> Project:
    project = Project.objects.filter(pk=int(project_id)).first() if str(project_id).isdigit() else None
    if project is None or not access.can(user, "project.view", project):
        raise Refused("No such project.", status=404)
    if not access.can(user, "change.plan", project):
        raise Refused("You may not plan changes in this project.", status=403)
    return project


def _hosts(project: Project, host_ids: Sequence[int | str] | None, tag_id: int | str | None) -> list[Host]:
    """The chosen hosts, all of the project: one that is not (or not there) refuses the lot."""
    if (host_ids is None) == (tag_id is None):
        raise Refused("Choose hosts or a tag, not both and not neither.", field="hosts", status=400)
    if host_ids is not None:
        if not host_ids or not all(str(pk).isdigit() for pk in host_ids):
            raise Refused("Choose at least one host.", field="hosts", status=400)
        wanted = {int(pk) for pk in host_ids}
        hosts = list(Host.objects.filter(project=project, pk__in=wanted).order_by("name"))
        if len(hosts) != len(wanted):
            # Another project's host, or one that does not exist: the same answer for both.
            raise Refused("No such host.", field="hosts", status=404)
        return hosts
    tag = Tag.objects.filter(pk=int(str(tag_id))).first() if str(tag_id).isdigit() else None
    if tag is None:
        raise Refused("No such tag.", field="tag", status=404)
    hosts = list(Host.objects.filter(project=project, tags=tag).order_by("name"))
    if not hosts:
        raise Refused(f"No host of {project.name} has the tag {tag.name}.", field="tag", status=400)
    return hosts


def _index(
    host: Host, found: HostPatchStatus, stored: cache.DatabaseCache, indexes: dict[tuple[str, ...], RepoIndex]
) -> RepoIndex:
    """The host's enabled repositories as its last check read them, from the metadata cache
    (hosts.patches.cache, as the refresh keys it); hosts with the same repositories share one."""
    urls = tuple(
        dict.fromkeys(
            cache.base_url(str(r["baseurl"]))
            for r in found.repositories
            if r.get("enabled") and r.get("baseurl")
        )
    )
    if urls not in indexes:
        metadata = []
        for url in urls:
            try:
                metadata.append(RepoMetadata.from_json(stored[url]))
            except KeyError:
                raise Refused(
                    f"The repository {url} of host {host.name} has not been read yet: check the host again."
                ) from None
        indexes[urls] = RepoIndex(metadata)
    return indexes[urls]


def _plans(hosts: Iterable[Host], selection: Selection) -> list[tuple[Host, HostPatchPlan]]:
    statuses = {s.host_id: s for s in HostPatchStatus.objects.filter(host__in=list(hosts))}
    stored = cache.DatabaseCache()
    indexes: dict[tuple[str, ...], RepoIndex] = {}
    plans = []
    for host in hosts:
        found = statuses.get(host.pk)
        if found is None or found.read_at is None:
            raise Refused(f"Host {host.name} has no patch status yet: check it first.")
        installed = [Nevra.from_json(n) for n in found.installed]
        plans.append(
            (host, plan_host(installed, _index(host, found, stored, indexes), selection, host=host.name))
        )
    return plans


def default_title(selection: Selection, hosts: int) -> str:
    """What a change is called when its planner named it nothing: what it applies, and where."""
    where = f"on {hosts} host{'s' if hosts != 1 else ''}"
    if selection.kind == "advisories":
        shown = ", ".join(selection.advisory_ids[:3]) + (" …" if len(selection.advisory_ids) > 3 else "")
        return f"{shown} {where}"[:200]
    return f"{'Security updates' if selection.kind == 'security' else 'All updates'} {where}"


def batches(names_with_work: Sequence[bool], batch_size: int) -> list[int]:
    """Each host's batch, the hosts in name order: 1, 2, ... by ``batch_size`` over the hosts
    with something to apply; 0 for a host with nothing."""
    numbers, position = [], 0
    for has_work in names_with_work:
        if has_work:
            numbers.append(position // batch_size + 1)
            position += 1
        else:
            numbers.append(0)
    return numbers


def plan_change(
    user: Any,
    project_id: int | str,
    *,
    host_ids: Sequence[int | str] | None = None,
    tag_id: int | str | None = None,
    selection: Selection,
    batch_size: int = 1,
    pause_on_failure: bool = True,
    success_window_hours: int = 24,
    title: str = "",
) -> PatchChange:
    """Plan ``selection`` on the chosen hosts of the project from their stored patch status
    and the cached repositories (nothing is asked of the hosts); status planned."""
    project = _project(user, project_id)
    if not 1 <= batch_size <= MAX_BATCH:
        raise Refused(f"A batch is 1 to {MAX_BATCH} hosts.", field="batch_size", status=400)
    if not 0 <= success_window_hours <= MAX_WINDOW_HOURS:
        raise Refused(
            f"The success window is 0 to {MAX_WINDOW_HOURS} hours.", field="success_window_hours", status=400
        )
    title = title.strip()[:200]
    hosts = _hosts(project, host_ids, tag_id)
    readable = set(
        services.readable(Host.objects.filter(pk__in=[h.pk for h in hosts])).values_list("pk", flat=True)
    )
    unreadable = [h.name for h in hosts if h.pk not in readable]
    if unreadable:
        raise Refused(
            f"The portal cannot patch {', '.join(unreadable)}: a host needs to be enabled, "
            "with an SSH address and a pinned host key."
        )
    plans = _plans(hosts, selection)
    numbers = batches([not plan.empty for _, plan in plans], batch_size)
    with transaction.atomic():
        change = PatchChange.objects.create(
            project=project,
            title=title or default_title(selection, len(hosts)),
            selection=selection.to_json(),
            batch_size=batch_size,
            pause_on_failure=pause_on_failure,
            success_window_hours=success_window_hours,
            created_by=user,
        )
        PatchRun.objects.bulk_create(
            PatchRun(
                change=change,
                host=host,
                batch=number,
                plan=plan.to_json(),
                state=PatchRunState.NOTHING if plan.empty else PatchRunState.PLANNED,
            )
            for (host, plan), number in zip(plans, numbers, strict=True)
        )
        audit.record(
            "patch.plan",
            obj=change,
            project=project,
            actor=user,
            after={
                "selection": selection.to_json(),
                "hosts": {host.name: [str(t.target) for t in plan.transitions] for host, plan in plans},
                "batch_size": batch_size,
            },
        )
    news.publish_change(change)
    return change


# ------------------------------------------------------------------ deciding


def submit(change: PatchChange, user: Any) -> PatchChange:
    """Ask for approval (planned -> awaiting approval)."""
    _require(user, "change.plan", change, "You may not submit patch changes in this project.")
    with transaction.atomic():
        change = _locked(change)
        if change.status != PatchChangeStatus.PLANNED:
            raise Refused(f"This patch change is {_state(change)}, not planned: it cannot be submitted.")
        change.status = PatchChangeStatus.AWAITING_APPROVAL
        change.save(update_fields=["status"])
        audit.record("patch.submit", obj=change, project=change.project, actor=user)
    news.publish_change(change)
    return change


def approve(change: PatchChange, user: Any, comment: str = "") -> PatchChange:
    _require(user, "change.approve", change, "Only a Project admin may approve patch changes.")
    with transaction.atomic():
        change = _locked(change)
        if change.status != PatchChangeStatus.AWAITING_APPROVAL:
            raise Refused(f"This patch change is {_state(change)}, not awaiting approval.")
        change.status = PatchChangeStatus.APPROVED
        change.approved_by, change.approved_at = user, timezone.now()
        change.save(update_fields=["status", "approved_by", "approved_at"])
        audit.record(
            "patch.approve",
            obj=change,
            project=change.project,
            actor=user,
            after={"comment": comment} if comment else None,
        )
    news.publish_change(change)
    return change


def reject(change: PatchChange, user: Any, comment: str = "") -> PatchChange:
    _require(user, "change.approve", change, "Only a Project admin may reject patch changes.")
    with transaction.atomic():
        change = _locked(change)
        if change.status not in (PatchChangeStatus.AWAITING_APPROVAL, PatchChangeStatus.PLANNED):
            raise Refused("Only a patch change that has not been approved or applied can be rejected.")
        change.status = PatchChangeStatus.REJECTED
        change.finished_at = timezone.now()
        change.save(update_fields=["status", "finished_at"])
        audit.record(
            "patch.reject",
            obj=change,
            project=change.project,
            actor=user,
            after={"comment": comment} if comment else None,
        )
    news.publish_change(change)
    return change


def may_apply(change: PatchChange, user: Any) -> bool:
    """As configuration changes (hosts.changes.approval.may_apply): an approved change is
    applied by an approver, or by whoever planned it."""
    if change.status != PatchChangeStatus.APPROVED:
        return False
    return access.can(user, "change.approve", change.project_id) or (
        change.created_by_id == getattr(user, "pk", None)
        and access.can(user, "change.plan", change.project_id)
    )


# ------------------------------------------------------------------ applying


def start_apply(change: PatchChange, user: Any) -> PatchChange:
    """Apply an approved change: its first batch now, or, outside the project's maintenance
    windows, scheduled for the next opening (the watcher starts it then)."""
    # Rights before state: a Viewer learns "not allowed", never what state the change is in.
    _require(user, "change.plan", change, "You may not apply patch changes in this project.")
    with transaction.atomic():
        change = _locked(change)
        if change.status != PatchChangeStatus.APPROVED:
            raise Refused(f"This patch change is {_state(change)}, not approved: it cannot be applied.")
        if not may_apply(change, user):
            raise Refused("You may not apply this patch change.", status=403)
        runs = PatchRun.objects.filter(change=change, state=PatchRunState.PLANNED)
        if not runs.exists():
            raise Refused("No host of this patch change has anything to apply.")
        now = timezone.now()
        opens = windows.next_opening(change.project_id, now)
        runs.update(state=PatchRunState.WAITING, step="waiting")
        change.applied_by = user
        after = None
        if opens is not None and opens > now:
            change.status, change.not_before = PatchChangeStatus.SCHEDULED, opens
            after = {"scheduled": opens.isoformat()}
        else:
            change.status = PatchChangeStatus.APPLYING
            queue_next_batch(change)
        change.save(update_fields=["status", "applied_by", "not_before"])
        audit.record("patch.apply", obj=change, project=change.project, actor=user, after=after)
    news.publish_change(change)
    return change


def resume(change: PatchChange, user: Any) -> PatchChange:
    """Go on with a paused change: its next batch is queued."""
    _require(user, "change.approve", change, "Only a Project admin may resume a patch change.")
    with transaction.atomic():
        change = _locked(change)
        if change.status != PatchChangeStatus.PAUSED:
            raise Refused(f"This patch change is {_state(change)}, not paused.")
        change.status = PatchChangeStatus.APPLYING
        change.save(update_fields=["status"])
        queued = queue_next_batch(change)
        audit.record(
            "patch.resume", obj=change, project=change.project, actor=user, after={"hosts": len(queued)}
        )
    news.publish_change(change)
    if not queued:
        advance(change.pk)  # nothing was waiting after all: the change ends
    return change


def cancel(change: PatchChange, user: Any) -> PatchChange:
    """Cancel a change none of whose hosts is being patched; the hosts still waiting are skipped.
    Its planner may withdraw it until it is approved; after that, a Project admin decides."""
    _require(user, "change.plan", change, "You may not cancel patch changes in this project.")
    with transaction.atomic():
        change = _locked(change)
        withdrawing = change.status in (PatchChangeStatus.PLANNED, PatchChangeStatus.AWAITING_APPROVAL)
        if not access.can(user, "change.approve", change.project_id) and not (
            withdrawing and change.created_by_id == getattr(user, "pk", None)
        ):
            raise Refused("Only a Project admin, or its planner before approval, may cancel it.", status=403)
        runs = PatchRun.objects.filter(change=change)
        if (
            change.status == PatchChangeStatus.APPLYING
            or runs.filter(state__in=[PatchRunState.QUEUED, PatchRunState.APPLYING]).exists()
        ):
            raise Refused("Hosts of this patch change are being patched: it cannot be cancelled now.")
        if change.status not in CANCELLABLE:
            raise Refused(f"This patch change is {_state(change)}: it cannot be cancelled.")
        skipped = runs.filter(state__in=[PatchRunState.WAITING, PatchRunState.PLANNED]).update(
            state=PatchRunState.SKIPPED, step="skipped"
        )
        change.status, change.finished_at = PatchChangeStatus.CANCELLED, timezone.now()
        change.save(update_fields=["status", "finished_at"])
        audit.record(
            "patch.cancel", obj=change, project=change.project, actor=user, after={"skipped": skipped}
        )
    news.publish_change(change)
    return change


def actions_for(change: PatchChange, user: Any) -> list[str]:
    """What ``user`` may do with ``change`` now, in the order a page offers it: the same rules
    as the actions themselves (which check again), so nothing is offered that would be refused."""
    plan = access.can(user, "change.plan", change.project_id)
    decide = access.can(user, "change.approve", change.project_id)
    status = change.status
    found = []
    if status == PatchChangeStatus.PLANNED and plan:
        found.append("submit")
    if status == PatchChangeStatus.AWAITING_APPROVAL and decide:
        found.append("approve")
    if status in (PatchChangeStatus.AWAITING_APPROVAL, PatchChangeStatus.PLANNED) and decide:
        found.append("reject")
    if may_apply(change, user):
        found.append("apply")
    if status == PatchChangeStatus.PAUSED and decide:
        found.append("resume")
    withdrawing = status in (PatchChangeStatus.PLANNED, PatchChangeStatus.AWAITING_APPROVAL)
    if status in CANCELLABLE and (
        decide or (withdrawing and plan and change.created_by_id == getattr(user, "pk", None))
    ):
        found.append("cancel")
    return found


#: Each action a person takes on a change, by name (the page's buttons, the API's routes).
ACTIONS = {
    "submit": submit,
    "approve": approve,
    "reject": reject,
    "apply": start_apply,
    "resume": resume,
    "cancel": cancel,
}


def act(user: Any, change_id: int | str, action: str, comment: str = "") -> PatchChange:
    """Do ``action`` on the change ``change_id`` as ``user`` (404 unseen, 400 unknown action)."""
    change = get(user, change_id, "change.view")
    if action not in ACTIONS:
        raise Refused(f"Unknown action {action!r}.", status=400)
    if action in ("approve", "reject"):
        return ACTIONS[action](change, user, comment)  # type: ignore[call-arg]
    return ACTIONS[action](change, user)
