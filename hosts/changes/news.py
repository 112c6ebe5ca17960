"""News of a change for the browser: its page, its requester's My work, its project's
approvals queue. ``publish`` never raises; news lost is not a change failed."""

from __future__ import annotations

from django.template.loader import render_to_string

from hosts.models.changes import (
    Change,
    ChangeHost,
)
from portal import live, work_views


def topic(change: Change | int, project_id: int) -> str:
    change_id = change if isinstance(change, int) else change.pk
    return f"project:{project_id}:change:{change_id}"


def publish_run(run: ChangeHost) -> None:
    live.publish(
        topic(run.change_id, run.change.project_id),
        html=render_to_string("hosts/changes/partials/run_row.html", {"run": run}),
        data={"run": run.pk, "state": run.state, "step": run.step, "progress": run.progress},
    )
    work_views.publish_change(run.change, approvals=False)


def publish_change(change: Change) -> None:
    live.publish(
        topic(change, change.project_id),
        html=render_to_string(
            "hosts/changes/partials/summary.html",
            {"change": change, "progress": progress(change), "pushed": True},
        ),
        data={"change": change.pk, "status": change.status},
    )
    work_views.publish_change(change)


def progress(change: Change) -> int:
    values = list(change.hosts.values_list("progress", flat=True))
    return int(sum(values) / len(values)) if values else 0
