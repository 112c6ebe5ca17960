"""What a change's runs add up to, in the words its screens use: whether its plan left
anything to apply, and the status a person reads.

A plan in which no host has anything to write (every host already as wanted, refused or
unreachable) ends at planning: nothing to approve or apply. Pure: runs in, words out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from hosts.models.changes import Change, ChangeRun, ChangeStatus, RunState


class _Run(Protocol):
    state: str
    started: Any


#: What a host's plan can end in when there is nothing to write to it.
_NOTHING = {
    RunState.UNCHANGED: "already as wanted",
    RunState.REFUSED: "refused",
    RunState.UNREACHABLE: "unreachable",
}


#: Hosts of a change that (re)applying takes on, when they have a plan (``has_plan``).
RUNNABLE = (
    RunState.PLANNED,
    RunState.INTERRUPTED,
    RunState.FAILED,
    RunState.ROLLED_BACK,
    RunState.UNREACHABLE,
)


def has_plan(run: _Run) -> bool:
    """Whether applying may take this run on: planned, or left unfinished by an earlier apply.
    A host unreachable when planned was never read: it has no plan to apply."""
    return run.state == RunState.PLANNED or (run.state in RUNNABLE and run.started is not None)


def nothing_to_apply(runs: Iterable[_Run]) -> str:
    """Why no host of a planned change has anything to apply ("" when one has): the status a
    person reads for it. Only for a plan never applied: an apply leaves its own states."""
    runs = list(runs)
    if not runs or any(run.state not in _NOTHING or run.started is not None for run in runs):
        return ""
    states = {run.state for run in runs}
    if states == {RunState.UNCHANGED}:
        return "Nothing to apply"
    if states == {RunState.REFUSED}:
        return "Refused on all hosts"
    if states == {RunState.UNREACHABLE}:
        return "Unreachable on all hosts"
    if RunState.UNCHANGED not in states:
        return "Refused or unreachable on all hosts"
    counts = ", ".join(
        f"{sum(run.state == state for run in runs)} {words}"
        for state, words in _NOTHING.items()
        if state in states
    )
    return f"Nothing to apply ({counts})"


def why_nothing(label: str) -> str:
    """The sentence a refused apply and the disabled Apply button give."""
    if label.startswith("Nothing to apply"):
        return f"{label}: no host has anything to write"
    return f"Nothing to apply: {label.lower()}; the host cards say why, plan again once it is fixed"


def status_after_plan(runs: Iterable[_Run], *, can_approve: bool) -> str:
    """The status a plan ends in: waiting for a decision, or finished when nothing is left to apply
    (done when every host is already as wanted, failed when a host was refused or unreachable)."""
    runs = list(runs)
    label = nothing_to_apply(runs)
    if label:
        return (
            ChangeStatus.APPLIED if all(r.state == RunState.UNCHANGED for r in runs) else ChangeStatus.FAILED
        )
    return ChangeStatus.PLANNED if can_approve else ChangeStatus.AWAITING_APPROVAL


def status_label(change: Change, runs: Iterable[ChangeRun] | None = None) -> str:
    """The status a person reads: "Nothing to apply" and its kin rather than Applied or Failed."""
    if change.status in (ChangeStatus.APPLIED, ChangeStatus.FAILED, ChangeStatus.PLANNED):
        label = nothing_to_apply(change.runs.all() if runs is None else runs)
        if label:
            return label
    return change.get_status_display()
