"""What a person may do next with a change, for its page: the buttons their role allows
now, why Apply is not offered when nothing is left to apply, and, once an undo is applied,
the hosts it took out of their profile.

The page, its second read and the fetch its live summary makes all render these for the
one reading; the live summary itself is rendered once for every subscriber, so it never
carries them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hosts.changes import approval, desired, outcome
from hosts.models import Host
from hosts.models.changes import Change, ChangeRun, ChangeStatus, Profile, RunState
from portal import access


@dataclass(frozen=True)
class Released:
    """A host an undo took out of its profile: drift no longer compares it with the profile."""

    host: Host
    profile: Profile
    #: The profile still names the host (or one of its tags): planning it would bring the change back.
    still_targeted: bool
    may_edit: bool


@dataclass
class NextSteps:
    approve: bool = False
    apply: bool = False
    #: Why Apply is shown disabled ("" when it is not).
    apply_blocked: str = ""
    revert: bool = False
    released: list[Released] = field(default_factory=list)


def for_user(change: Change, user: Any, runs: list[ChangeRun]) -> NextSteps:
    project = change.project_id
    nothing = outcome.nothing_to_apply(runs)
    steps = NextSteps(
        approve=change.status == ChangeStatus.AWAITING_APPROVAL
        and access.can(user, "change.approve", project),
        apply=not nothing and approval.may_apply(change, user) and any(outcome.has_plan(r) for r in runs),
        revert=change.status in (ChangeStatus.APPLIED, ChangeStatus.PARTIAL, ChangeStatus.FAILED)
        and access.can(user, "change.plan", project)
        and not desired.is_rotation(change)
        and change.runs.filter(backups__isnull=False).exists(),
        released=released(change, user, runs),
    )
    if nothing and access.can(user, "change.approve", project):
        steps.apply_blocked = outcome.why_nothing(nothing)
    return steps


def released(change: Change, user: Any, runs: list[ChangeRun]) -> list[Released]:
    """The hosts an applied undo took out of the undone change's profile."""
    original = change.reverts
    profile = original.profile if original is not None else None
    if profile is None:
        return []
    targets = {host.pk for host in desired.hosts_of(profile)}
    may_edit = access.can(user, "change.plan", profile.project_id)
    return [
        Released(run.host, profile, run.host_id in targets, may_edit)
        for run in runs
        if run.state == RunState.APPLIED
    ]
