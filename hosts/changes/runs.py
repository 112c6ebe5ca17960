"""One host's run of a change, in the database: claimed by one task, its progress, the
originals kept once, and how it ends. The database is the truth: a task may die at any
line, and its run is then found ``interrupted`` with its backups kept."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, TextField, Value
from django.db.models.functions import Concat
from django.utils import timezone

from hosts import ca as portal_ca
from hosts import ssh
from hosts.changes import rotation
from hosts.changes.news import publish_change, publish_run, publish_step
from hosts.changes.outcome import RUNNABLE as RUNNABLE  # manage.py change and rotate_credentials read it here
from hosts.changes.render import Checks
from hosts.models import Host
from hosts.models.changes import (
    Change,
    ChangeRun,
    ChangeStatus,
    FileBackup,
    RunState,
)
from portal import audit, events
from portal.models import Event

#: A run still "applying" without a heartbeat for this long lost its worker.
INTERRUPTED_AFTER = timedelta(minutes=5)


# Keyed by str: a run's state arrives as a plain string, and a RunState is one.
#: The step a finished run shows, by its final state (any other: "failed").
_FINISHED_STEP: dict[str, str] = {RunState.APPLIED: "done", RunState.ROLLED_BACK: "rolled back"}
#: The audit action a finished run records, by its final state (any other: "change.failed").
_FINISHED_ACTION: dict[str, str] = {
    RunState.APPLIED: "change.applied",
    RunState.ROLLED_BACK: "change.rollback",
}


@dataclass
class Context:
    run_id: int
    host_id: int
    change_id: int
    access: ssh.Access
    files: list[dict[str, Any]]
    restarts: list[str]
    checks: Checks
    host_names: list[str]
    docker_url: str
    reverting: bool
    #: Revert runs: path -> (existed, bytes, mode) to write back.
    restore: dict[str, tuple[bool, bytes, int]] = field(default_factory=dict)
    endpoint_restore: dict[str, Any] | None = None
    #: The kernel's values, before this run, of the parameters its sysctl file sets (for a
    #: revert: before the change it undoes): files alone do not unset what sysctl -p set.
    kernel_before: dict[str, str] = field(default_factory=dict)
    #: The client CA made for this host by a Docker TLS run (in memory only: its key is saved,
    #: encrypted, on the Host once the new endpoint answered).
    client_ca: portal_ca.ClientCa | None = None
    #: The server certificate issued for this host by a Docker TLS run (in memory only).
    server_cert: str = ""
    #: A credential rotation's new and old credentials (hosts.changes.rotation.Pending).
    rotation: Any = None


def claim(run_id: int) -> Context | None:
    """Take a run for this task; None when another task has it or it is done."""
    with transaction.atomic():
        run = ChangeRun.objects.select_for_update().select_related("host", "change").get(pk=run_id)
        fresh = run.heartbeat and run.heartbeat > timezone.now() - INTERRUPTED_AFTER
        if run.state == RunState.APPLYING and fresh:
            return None
        if run.state not in (RunState.QUEUED, RunState.APPLYING, RunState.INTERRUPTED):
            return None
        run.state, run.started, run.heartbeat = RunState.APPLYING, timezone.now(), timezone.now()
        run.step, run.progress = "connecting", 5
        run.save(update_fields=["state", "started", "heartbeat", "step", "progress"])
    host = run.host
    reverts = run.change.reverts_id
    context = Context(
        run_id=run.pk,
        host_id=host.pk,
        change_id=run.change_id,
        access=ssh.Access.of(host),
        files=run.files,
        restarts=run.restarts,
        checks=Checks.of(run),
        host_names=[host.address, host.name],
        docker_url=host.docker_url,
        reverting=reverts is not None,
    )
    context.rotation = rotation.pending(run)
    if reverts is not None:
        original = ChangeRun.objects.filter(change_id=reverts, host=host).first()
        if original is not None:
            for backup in original.backups.all():
                context.restore[backup.path] = (
                    backup.existed,
                    base64.b64decode(str(backup.content)),
                    backup.mode,
                )
            if original.endpoint_before:
                context.endpoint_restore = json.loads(str(original.endpoint_before))
            context.kernel_before = dict(original.kernel_before)
    publish_run(run)
    return context


@dataclass
class StepReport:
    """What one run reported since its last write: where it is now and its new log lines,
    each with the time it was said."""

    step: str
    progress: int
    lines: list[tuple[datetime, str]] = field(default_factory=list)


def report_step(run_id: int, step: str, progress: int, line: str = "") -> None:
    """One step of one run (see report_steps)."""
    report_steps({run_id: StepReport(step, progress, [(timezone.now(), line)] if line else [])})


def report_steps(reports: Mapping[int, StepReport]) -> None:
    """Steps of applies under way, of any number of runs, in one transaction: each run's
    fields in one UPDATE, then only the moving parts of each host's card published
    (hosts.changes.news.publish_step).

    Every host of a push reports through the one database thread of its worker. One write
    per report made that thread the push's bottleneck (350 reports of 50 hosts took 6 s of
    an 11 s apply, each waiting for the GIL behind the SSH work), so reports made while a
    write is under way are written together next (hosts.changes.step_reports).
    """
    now = timezone.now()
    # One commit for all (no savepoint: a failed batch is handed to each run's reporter).
    with transaction.atomic(savepoint=False):
        for run_id, report in reports.items():
            fields: dict[str, Any] = {"step": report.step, "progress": report.progress, "heartbeat": now}
            if report.lines:
                text = "".join(f"{said:%H:%M:%S} {line}\n" for said, line in report.lines)
                fields["log"] = Concat(F("log"), Value(text), output_field=TextField())
            ChangeRun.objects.filter(pk=run_id).update(**fields)
    for run in (
        ChangeRun.objects.select_related("host", "change")
        .only("state", "step", "progress", "log", "host__name", "change__project")
        .filter(pk__in=list(reports))
    ):
        publish_step(run)


def keep_backups(run_id: int, originals: dict[str, ssh.RemoteFile]) -> None:
    """The original files, kept once: a second attempt must not back up our own writes."""
    run = ChangeRun.objects.get(pk=run_id)
    have = set(run.backups.values_list("path", flat=True))
    for path, remote in originals.items():
        if path not in have:
            FileBackup.objects.create(
                run=run,
                path=path,
                existed=remote.exists,
                content=base64.b64encode(remote.data).decode() if remote.exists else "",
                mode=remote.mode,
            )


def backups_of(run_id: int) -> dict[str, tuple[bool, bytes, int]]:
    return {
        b.path: (b.existed, base64.b64decode(str(b.content)) if b.existed else b"", b.mode)
        for b in FileBackup.objects.filter(run_id=run_id)
    }


def save_kernel_values(run_id: int, values: dict[str, str]) -> None:
    with transaction.atomic():
        run = ChangeRun.objects.select_for_update().get(pk=run_id)
        run.kernel_before = values
        run.save(update_fields=["kernel_before"])


def finish_run(run_id: int, state: str, reason: str, *, endpoint: dict[str, Any] | None = None) -> None:
    with transaction.atomic():
        run = ChangeRun.objects.select_for_update().select_related("host", "change").get(pk=run_id)
        run.state, run.reason, run.finished = state, reason, timezone.now()
        run.progress = 100
        run.step = _FINISHED_STEP.get(state, "failed")
        run.log += f"{timezone.now():%H:%M:%S} {run.get_state_display()}{': ' + reason if reason else ''}\n"
        if endpoint and state == RunState.APPLIED:
            host = Host.objects.select_for_update().get(pk=run.host_id)
            if "docker_url" in endpoint and not run.endpoint_before:
                run.endpoint_before = json.dumps(
                    {
                        "docker_url": host.docker_url,
                        "tls_ca": host.tls_ca,
                        "tls_fingerprint": host.tls_fingerprint,
                        "tls_client_cert": host.tls_client_cert,
                        "tls_client_key": str(host.tls_client_key or ""),
                        "client_ca_cert": host.client_ca_cert,
                        "client_ca_key": str(host.client_ca_key or ""),
                        "insecure": host.insecure,
                    }
                )
            for name, value in endpoint.items():
                setattr(host, name, value)
            host.save()
        # A rotation's new keys now live on the Host only.
        rotated = bool(endpoint) and state == RunState.APPLIED and bool(str(run.credentials or ""))
        if rotated:
            run.credentials = ""
        run.save()
    if rotated:
        rotation.record(run)
    change = run.change
    action = _FINISHED_ACTION.get(state, "change.failed")
    audit.record(
        action,
        obj=change,
        project=change.project,
        actor=change.applied_by,
        after={
            "host": run.host.name,
            "state": state,
            "reason": reason,
            "diff": "".join(f["diff"] for f in run.files if not f.get("secret")),
        },
    )
    if state != RunState.APPLIED:
        events.notify(
            f"{change}: {run.host.name} {run.get_state_display().lower()}: {reason}",
            severity=Event.Severity.ERROR if state == RunState.FAILED else Event.Severity.WARNING,
            obj=change,
            project=change.project_id,
            kind="change.rolled_back" if state == RunState.ROLLED_BACK else "change.failed",
        )
    publish_run(run)
    finish_change(change.pk)


def finish_change(change_id: int) -> None:
    with transaction.atomic():
        change = Change.objects.select_for_update().get(pk=change_id)
        states = set(change.runs.values_list("state", flat=True))
        busy = {RunState.QUEUED, RunState.APPLYING}
        if states & busy or change.status not in (
            ChangeStatus.APPLYING,
            ChangeStatus.PARTIAL,
            ChangeStatus.FAILED,
        ):
            return
        bad = {RunState.FAILED, RunState.ROLLED_BACK, RunState.INTERRUPTED, RunState.UNREACHABLE}
        if not states & bad:
            change.status = ChangeStatus.APPLIED
            events.notify(
                f"{change}: applied on every host",
                obj=change,
                project=change.project_id,
                kind="change.applied",
            )
        elif RunState.APPLIED in states:
            change.status = ChangeStatus.PARTIAL
        else:
            change.status = ChangeStatus.FAILED
        change.finished_at = timezone.now()
        change.save(update_fields=["status", "finished_at"])
    publish_change(change)


def not_queued(run_id: int, reason: str) -> None:
    """A run whose apply task could not be queued: failed, nothing written to its host;
    applying again takes it on (it counts as started, see ``outcome.has_plan``)."""
    # A run started before keeps its first start.
    ChangeRun.objects.filter(pk=run_id, started__isnull=True).update(started=timezone.now())
    finish_run(run_id, RunState.FAILED, reason)


def sweep_interrupted(*, change: Change | None = None, older_than: timedelta = INTERRUPTED_AFTER) -> int:
    """Runs left "applying" by a worker that died: mark them interrupted (backups kept)."""
    stale = ChangeRun.objects.filter(state=RunState.APPLYING, heartbeat__lt=timezone.now() - older_than)
    if change is not None:
        stale = stale.filter(change=change)
    count = 0
    for run in stale.select_related("change", "host"):
        run.state = RunState.INTERRUPTED
        run.reason = (
            f"the worker stopped during “{run.step}”; the original files are kept; apply again to finish"
        )
        run.save(update_fields=["state", "reason"])
        count += 1
        publish_run(run)
        finish_change(run.change_id)
    return count
