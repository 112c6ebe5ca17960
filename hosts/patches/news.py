"""News of a patch change for the browser: each host's row as it moves, and the change's
status. On the change's own topic inside its project (``project:<id>:patch:<change id>``,
which portal.access.can_subscribe lets the project's members follow). Never raises: the
database is the truth, news lost is not a change failed."""

from __future__ import annotations

import logging

from django.template.loader import render_to_string

from hosts.models import PatchChange, PatchRun
from portal import live

log = logging.getLogger(__name__)

ROW_TEMPLATE = "hosts/patches/partials/patch_run_row.html"


def topic(change_id: int, project_id: int) -> str:
    return f"project:{project_id}:patch:{change_id}"


def run_data(run: PatchRun) -> dict[str, object]:
    return {
        "run": run.pk,
        "host": run.host_id,
        "state": run.state,
        "step": run.step,
        "progress": run.progress,
        "snapshot": run.snapshot_state,
    }


def publish_run(run: PatchRun) -> None:
    """A host's row moved (``run`` loaded with its host and its change)."""
    try:
        html = render_to_string(ROW_TEMPLATE, {"run": run})
        live.publish(topic(run.change_id, run.change.project_id), html=html, data=run_data(run))
    except Exception:
        log.warning("patch run %s not published", run.pk, exc_info=True)


def publish_change(change: PatchChange) -> None:
    try:
        live.publish(topic(change.pk, change.project_id), data={"change": change.pk, "status": change.status})
    except Exception:
        log.warning("patch change %s not published", change.pk, exc_info=True)
