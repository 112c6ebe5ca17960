"""One host's part of a patch change, as its task carries it out (hosts.patches.tasks):
claim the run once, snapshot the VM when the host is one, apply the plan with the engine
(hosts.patches.apply) saving each step on the run, then end it: applied (the snapshot kept
for the success window), rolled back (the engine's downgrade put the recorded versions
back: the snapshot is deleted at once), or failed (and, when the host had changed and could
not be put back, the VM reverted to its snapshot: the last resort, see README).

The database is the truth: a worker may die at any line, and a run left "applying" is ended
by whichever comes first of its redelivered message and the watcher's sweep.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from hosts import ssh
from hosts.models import PatchChange, PatchRun, PatchRunState, SnapshotState, VirtualMachine
from hosts.patches import apply, news, snapshots, status
from hosts.patches.plan import HostPatchPlan
from portal import audit

log = logging.getLogger(__name__)

#: Why a run found "applying" by its redelivered message failed.
WORKER_STOPPED = "the worker stopped while this host was being patched: check its packages, then plan again"
#: A step's progress, by the engine's step name (the run's bar; rollback steps keep the last).
PROGRESS = {"detect": 15, "record": 25, "update": 60, "reboot": 70, "wait": 80, "engine": 85, "verify": 95}
#: The steps that change nothing on the host (the update's own step only when its command ran).
_READ_ONLY = {"plan", "detect", "record"}

#: The audit action a finished run records, by its final state (any other: patch.host_failed).
_ACTION: dict[str, str] = {
    PatchRunState.APPLIED: "patch.host_applied",
    PatchRunState.ROLLED_BACK: "patch.host_rolled_back",
}


def _load(run_id: int) -> PatchRun:
    return PatchRun.objects.select_related("host", "change__project", "change__applied_by").get(pk=run_id)


def claim(run_id: int) -> PatchRun | None:
    """The run, taken for this task (queued -> applying in one UPDATE); None when another
    delivery has or had it. A run found applying was left by a worker that died: what it did
    to the host is unknown, so it is failed, never run blind a second time."""
    now = timezone.now()
    claimed = PatchRun.objects.filter(pk=run_id, state=PatchRunState.QUEUED).update(
        state=PatchRunState.APPLYING, started=now, heartbeat=now, step="starting", progress=1
    )
    run = _load(run_id)
    if not claimed:
        if run.state == PatchRunState.APPLYING:
            finish(run, PatchRunState.FAILED, WORKER_STOPPED)
        return None
    news.publish_run(run)
    return run


def save_step(run_id: int, step: str, progress: int) -> None:
    """One step of the engine on the run (its heartbeat too), told live."""
    PatchRun.objects.filter(pk=run_id, state=PatchRunState.APPLYING).update(
        step=step[:60], progress=progress, heartbeat=timezone.now()
    )
    news.publish_run(_load(run_id))


def finish(run: PatchRun, state: str, reason: str, **fields: Any) -> bool:
    """End an applying run; False when it had ended already (the sweep or a redelivery won)."""
    values = {"state": state, "reason": reason, "finished": timezone.now(), "step": "done", **fields}
    if state != PatchRunState.APPLIED:
        values["step"] = "rolled back" if state == PatchRunState.ROLLED_BACK else "failed"
    values.setdefault("progress", 100)
    ended = PatchRun.objects.filter(pk=run.pk, state=PatchRunState.APPLYING).update(**values)
    if not ended:
        return False
    run.refresh_from_db()
    change = run.change
    audit.record(
        _ACTION.get(state, "patch.host_failed"),
        obj=change,
        project=change.project,
        actor=change.applied_by,
        actor_name="" if change.applied_by else "system",
        after={"host": run.host.name, "state": state, "reason": reason},
    )
    news.publish_run(run)
    return True


def touched(result: apply.ApplyResult) -> bool:
    """Did the engine send anything that changes the host (the update command, a reboot, a
    downgrade)? A plan refused before that (the host changed since it was made) did not."""
    for step in result.steps:
        if step.name == "connection" and "during the update" in step.detail:
            return True
        if step.name == "update" and step.command:
            return True
        if step.name not in _READ_ONLY | {"update", "connection"}:
            return True
    return False


def _first_problem(result: apply.ApplyResult) -> str:
    return next((s.detail for s in result.steps if not s.ok), result.state)


def snapshot_first(run: PatchRun, vm_row: VirtualMachine) -> bool:
    """Take the VM's snapshot before anything changes; False (the run failed) when it could not."""
    name = snapshots.name_for(run.change_id)
    save_step(run.pk, "snapshot", 5)
    change = run.change
    try:
        moref = snapshots.take(vm_row, name)
    except snapshots.SnapshotError as exc:
        finish(
            run,
            PatchRunState.FAILED,
            f"the VM snapshot could not be taken, so nothing was changed on the host: {exc}",
            snapshot_name=name,
            snapshot_state=SnapshotState.FAILED,
        )
        return False
    PatchRun.objects.filter(pk=run.pk).update(
        snapshot_moref=moref, snapshot_name=name, snapshot_state=SnapshotState.TAKEN, heartbeat=timezone.now()
    )
    run.snapshot_moref, run.snapshot_name, run.snapshot_state = moref, name, SnapshotState.TAKEN
    audit.record("patch.snapshot_taken", **_snapshot_record(run, vm_row, change.applied_by))
    return True


def _snapshot_record(run: PatchRun, vm_row: VirtualMachine, actor: Any = None, **more: Any) -> dict[str, Any]:
    """What the trail keeps of a snapshot action (audit.record's keywords): the VM, the change,
    and who (a person, or the system when the watcher or a sweep did it)."""
    return {
        "obj": vm_row,
        "project": run.change.project,
        "actor": actor,
        "actor_name": "" if actor else "system",
        "after": {
            "change": run.change_id,
            "host": run.host.name,
            "snapshot": run.snapshot_name,
            "moref": run.snapshot_moref,
            **more,
        },
    }


def remove_snapshot(run: PatchRun, vm_row: VirtualMachine) -> bool:
    """Delete the run's snapshot; on failure it stays due, for the watcher to try again."""
    try:
        snapshots.remove(vm_row, run.snapshot_moref)
    except snapshots.SnapshotError as exc:
        log.warning("snapshot %s of %s not removed: %s", run.snapshot_moref, vm_row.name, exc)
        PatchRun.objects.filter(pk=run.pk, snapshot_remove_after__isnull=True).update(
            snapshot_remove_after=timezone.now()
        )
        return False
    PatchRun.objects.filter(pk=run.pk).update(
        snapshot_state=SnapshotState.REMOVED, snapshot_remove_after=None
    )
    run.snapshot_state = SnapshotState.REMOVED
    audit.record("patch.snapshot_removed", **_snapshot_record(run, vm_row))
    news.publish_run(_load(run.pk))
    return True


def vm_of(run: PatchRun) -> VirtualMachine | None:
    return VirtualMachine.objects.select_related("vcenter").filter(host_id=run.host_id, gone=False).first()


async def _engine(run: PatchRun, plan: HostPatchPlan) -> apply.ApplyResult:
    saving = database_sync_to_async(save_step, thread_sensitive=True)

    async def progress(step: apply.Step) -> None:
        await saving(run.pk, f"{step.name}: {'ok' if step.ok else 'problem'}", PROGRESS.get(step.name, 90))

    return await apply.apply_host(
        ssh.Access.of(run.host), plan, progress=progress, reboot_timeout=settings.PATCH_REBOOT_TIMEOUT
    )


def conclude(run: PatchRun, result: apply.ApplyResult, vm_row: VirtualMachine | None) -> None:
    """End the run from the engine's result, and deal with the snapshot accordingly."""
    change: PatchChange = run.change
    snapshot = vm_row is not None and run.snapshot_state == SnapshotState.TAKEN
    if result.ok:
        after = timezone.now() + timedelta(hours=change.success_window_hours)
        finish(
            run,
            PatchRunState.APPLIED,
            "",
            result=result.to_json(),
            snapshot_remove_after=after if snapshot else None,
        )
        return
    if result.state == apply.ROLLED_BACK:
        finish(
            run, PatchRunState.ROLLED_BACK, f"rolled back: {_first_problem(result)}", result=result.to_json()
        )
        if snapshot and vm_row is not None:
            remove_snapshot(run, vm_row)  # the recorded versions are back and verified: not needed
        return
    reason = result.state
    if snapshot and vm_row is not None:
        if touched(result):
            reason = _revert(run, vm_row, reason)
        else:
            finish(run, PatchRunState.FAILED, reason, result=result.to_json())
            remove_snapshot(run, vm_row)  # nothing was changed on the host
            return
    finish(run, PatchRunState.FAILED, reason, result=result.to_json())


def _revert(run: PatchRun, vm_row: VirtualMachine, reason: str) -> str:
    """The last resort: the host changed and could not be put back by downgrading."""
    save_step(run.pk, "reverting to the snapshot", 95)
    try:
        snapshots.revert(vm_row, run.snapshot_moref)
    except snapshots.SnapshotError as exc:
        return f"{reason}; reverting the VM to its snapshot {run.snapshot_name} failed too: {exc}"
    PatchRun.objects.filter(pk=run.pk).update(snapshot_state=SnapshotState.REVERTED)
    run.snapshot_state = SnapshotState.REVERTED
    audit.record(
        "patch.snapshot_reverted", **_snapshot_record(run, vm_row, run.change.applied_by, reason=reason)
    )
    return f"{reason}; the VM was reverted to its snapshot {run.snapshot_name} (taken before the update)"


def run_host(run_id: int) -> PatchRun | None:
    """Carry out one run; the run as it ended, or None when this delivery had nothing to do."""
    run = claim(run_id)
    if run is None:
        return None
    vm_row = vm_of(run)
    if vm_row is not None and not snapshot_first(run, vm_row):
        return _load(run_id)
    try:
        result = asyncio.run(_engine(run, HostPatchPlan.from_json(run.plan)))
    except Exception as exc:  # the engine never raises for the host; this is the portal's
        log.exception("patch run %s", run_id)
        result = apply.ApplyResult(host=run.host.name, state=f"failed: {exc}")
    conclude(run, result, vm_row)
    # The fleet's counts move with what is installed now (the refresh reads the host again).
    try:
        status.refresh_hosts([run.host])
    except Exception:
        # The run has ended whatever the refresh does; the watcher reads the host again later.
        log.exception("patch status of %s not refreshed after its run", run.host.name)
    return _load(run_id)
