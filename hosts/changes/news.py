"""News of a change for the browser: its page, its requester's My work, its project's
approvals queue. ``publish`` never raises; news lost is not a change failed."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from hosts.changes import outcome, work
from hosts.models.changes import (
    Change,
    ChangeRun,
)
from portal import live


def topic(change: Change | int, project_id: int) -> str:
    change_id = change if isinstance(change, int) else change.pk
    return f"project:{project_id}:change:{change_id}"


def summary(change: Change, runs: list[ChangeRun] | None = None) -> dict[str, Any]:
    """What the change's summary shows whoever reads it: its status in words and its progress."""
    return {
        "change": change,
        "status_label": outcome.status_label(change, runs),
        "progress": change.progress(),
    }


def _publish_for_run(run: ChangeRun, template: str) -> None:
    live.publish(
        topic(run.change_id, run.change.project_id),
        html=render_to_string(template, {"run": run}),
        data={"run": run.pk, "state": run.state, "step": run.step, "progress": run.progress},
    )


def publish_card(run: ChangeRun) -> None:
    """A host's whole card, diffs included, on the change's page."""
    _publish_for_run(run, "hosts/changes/partials/run_row.html")


def publish_run(run: ChangeRun) -> None:
    """A run's state moved: its card, and its change's row on the requester's My work."""
    publish_card(run)
    work.publish(run.change, approvals=False)


def publish_step(run: ChangeRun) -> None:
    """A step of a run under way: its card's header, progress and log (replaced by id), not
    the card with its diffs, and no My work news (that row moves when a host finishes)."""
    _publish_for_run(run, "hosts/changes/partials/run_step.html")


def publish_change(change: Change) -> None:
    # Rendered once for every subscriber: without ``steps`` the summary asks each browser to
    # fetch the buttons its user may press (hosts.changes.next_steps).
    live.publish(
        topic(change, change.project_id),
        html=render_to_string("hosts/changes/partials/summary.html", summary(change)),
        data={"change": change.pk, "status": change.status},
    )
    work.publish(change)
