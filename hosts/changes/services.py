"""What people ask of configuration changes that the UI and the API both call. Deciding on
and applying a change are ``hosts.changes.approval``'s and undoing one ``revert``'s; each
raises ``ChangeError``, a ``portal.refused.Refused``."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from django.db.models import Q

from hosts.changes import desired, planning, revert, rotation, tasks
from hosts.changes.errors import ChangeError
from hosts.models import Host
from hosts.models.changes import Change, Drift, Profile
from portal import access
from portal.queueing import enqueue
from portal.refused import Refused


def _plan(change: Change, host_ids: list[int]) -> None:
    """Queue the planning of ``change`` on ``host_ids``; a plan that cannot be queued fails."""
    enqueue(
        tasks.plan_change, change.pk, host_ids, unqueued=lambda message: planning.not_planned(change, message)
    )


def request_plan(profile: Profile, user: Any, chosen: Collection[int] = ()) -> Change:
    """Plan ``profile`` on its hosts (or the ``chosen`` ones among them): a new change, read
    and rendered in a task (SSH reads only)."""
    targets = desired.hosts_of(profile)
    if chosen:
        strangers = set(chosen) - {h.pk for h in targets}
        if strangers:
            raise Refused(f"Not hosts of this profile: {sorted(strangers)}.", field="hosts", status=400)
        targets = [h for h in targets if h.pk in chosen]
    if not targets:
        raise Refused("This profile has no hosts: assign hosts or tags first.", field="hosts", status=400)
    try:
        change = planning.profile_change(profile, user)
    except ChangeError as exc:
        # A profile stored before a rule existed: refused before any host is read.
        raise ChangeError(str(exc), exc.problems, field="settings", status=400) from None
    _plan(change, [h.pk for h in targets])
    return change


def request_revert(original: Change, user: Any) -> Change:
    """Undo ``original``: a new change that plans its kept originals back onto its hosts."""
    change = revert.start_revert(original, user)
    hosts = [run.host_id for run in original.runs.filter(backups__isnull=False).distinct()]
    _plan(change, hosts)
    return change


def request_rotation(hosts: Sequence[Host], user: Any) -> Change:
    """Replace ``hosts``' credentials (SSH key, Docker client CA) through a planned change."""
    change = rotation.start(list(hosts), user)
    _plan(change, [h.pk for h in hosts])
    return change


def request_drift_check(user: Any) -> int:
    """Check now every host with a profile that ``user`` may plan changes on; how many."""
    hosts = list(
        Host.objects.filter(project__in=access.projects(user, "change.plan"))
        .filter(Q(profiles__isnull=False) | Q(tags__profiles__isnull=False))
        .distinct()
        .values_list("pk", flat=True)
    )
    if not hosts:
        raise Refused("No host of yours has a profile to check against.")
    enqueue(tasks.check_drift, hosts)
    return len(hosts)


def request_drift_fix(drift: Drift, user: Any) -> Change:
    """Bring one drifted host back to its profile: a new change (plan, approval, apply)."""
    profile = drift.profile
    change = planning.profile_change(profile, user, f"Bring {drift.host.name} back to {profile.name}")
    _plan(change, [drift.host_id])
    return change
