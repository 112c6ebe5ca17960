"""Planning a change: read each host's files over SSH, render, store the diffs; nothing is
written to a host. A revert and a credential rotation are planned here too."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from hosts import ssh
from hosts.changes import outcome, rotation
from hosts.changes.desired import is_rotation, refuse_stored
from hosts.changes.errors import ChangeError
from hosts.changes.files import SettingsError, docker, firewall, sshd, sysctl
from hosts.changes.news import publish_card, publish_change
from hosts.changes.render import (
    Checks,
    HostPlan,
    changed,
    lockout_reasons,
    paths_for,
    render_host,
    restarts_for,
    with_restart,
)
from hosts.changes.revert import plan_revert_one, revert_inputs
from hosts.models import Host
from hosts.models.changes import (
    Change,
    ChangeRun,
    ChangeStatus,
    Profile,
    RunState,
)
from portal import access, audit, events
from portal.models import Event


@dataclass(frozen=True)
class _PlanInput:
    host_id: int
    access: ssh.Access
    settings: dict[str, Any]


#: Settings whose plan depends on whether dockerd runs: what restarts after a daemon.json or
#: firewall change, and whether the remote API can be turned on.
DOCKER_STATE_MATTERS = ("docker_api", "daemon_json", "firewall")


def facts_command(item: _PlanInput) -> str:
    """The user's groups (sshd's AllowGroups guard), then dockerd's state where it matters:
    ``systemctl`` is not free (the lab's is a Python program: a third of planning 50 hosts)."""
    command = f"id -Gn {shlex.quote(item.access.user)} 2>/dev/null; echo"
    if any(key in item.settings for key in DOCKER_STATE_MATTERS):
        command += "; systemctl is-active docker 2>/dev/null || true"
    return command


async def _plan_one(item: _PlanInput) -> HostPlan:
    settings = item.settings
    paths = paths_for(settings)
    try:
        async with ssh.connect(item.access) as conn:
            async with ssh.sftp_client(conn) as sftp:
                files = await ssh.read_files(sftp, paths)
            facts_out = str((await ssh.run(conn, facts_command(item), timeout=30)).stdout or "").split("\n")
    except ssh.SSHError as exc:
        return HostPlan(state=RunState.UNREACHABLE, reason=str(exc))
    groups = facts_out[0].split() if facts_out else []
    docker_running = any(line.strip() == "active" for line in facts_out[1:])
    for required in (sshd.PATH, firewall.PATH):
        if not files[required].exists:
            return HostPlan(state=RunState.REFUSED, reason=f"{required} is missing on the host")
    if "docker_api" in settings and not files[docker.UNIT].exists:
        return HostPlan(state=RunState.REFUSED, reason=f"{docker.UNIT} is missing: Docker is not installed")
    try:
        entries, facts = render_host(settings, files)
    except SettingsError as exc:
        return HostPlan(state=RunState.REFUSED, reason=str(exc))
    plan = HostPlan(files=[e for e in entries if changed(e)])
    plan.restarts = restarts_for(plan.files, docker_running=docker_running)
    reasons = lockout_reasons(facts, user=item.access.user, port=item.access.port, groups=groups)
    if docker.port(settings.get("docker_api") or {}) is not None and not docker_running:
        reasons.append("Docker is not running on this host, so its remote API cannot be turned on")
    if reasons:
        plan.state, plan.reason = RunState.REFUSED, "; ".join(reasons)
        return plan
    new_port = int(facts["sshd"].get("Port") or item.access.port)
    fw = facts.get("firewall") or {}
    plan.checks = Checks(
        open=[list(p) for p in fw.get("open", [])],
        closed=[list(p) for p in fw.get("closed", [])],
        ssh_port=new_port if new_port != item.access.port else None,
        sysctl=dict(sysctl.normalize(settings["sysctl"])) if "sysctl" in settings else {},
    )
    if "docker_api" in settings and docker.port(settings["docker_api"] or {}) == docker.TLS_PORT:
        plan.checks.docker_tls = True
        # Certificates are issued at apply time, so a new plan never carries a private key.
        plan.restarts = with_restart(plan.restarts, "docker")
    if not plan.files and not plan.checks.docker_tls:
        plan.state = RunState.UNCHANGED
    return plan


def plan(change: Change, hosts: Iterable[Host]) -> Change:
    """Read each host's files, render, and store the diffs; nothing is written to a host."""
    hosts = list(hosts)
    if not change.reverts_id and not is_rotation(change):
        try:
            refuse_stored(change.settings, f"{change}")
        except ChangeError as exc:
            return _refuse_plan(change, str(exc))
    items = [_PlanInput(h.pk, ssh.Access.of(h), dict(change.settings)) for h in hosts]
    if change.reverts_id:
        plans = asyncio.run(ssh.bounded(revert_inputs(change, hosts), plan_revert_one))
    elif is_rotation(change):
        plans = asyncio.run(ssh.bounded(rotation.inputs(hosts), rotation.plan_one))
    else:
        plans = asyncio.run(ssh.bounded(items, _plan_one))
    with transaction.atomic():
        ChangeRun.objects.filter(change=change).delete()
        for host, result in zip(hosts, plans, strict=True):
            ChangeRun.objects.create(
                change=change,
                host=host,
                state=result.state,
                reason=result.reason,
                files=result.files,
                restarts=result.restarts,
                **result.checks.fields(),
                credentials=result.credentials,
            )
        can_approve = change.created_by is not None and can(change.created_by, "change.approve", change)
        change.status = outcome.status_after_plan(change.runs.all(), can_approve=can_approve)
        if change.status not in (ChangeStatus.PLANNED, ChangeStatus.AWAITING_APPROVAL):
            # Nothing for any host to write: the change ends here, with nothing to decide.
            change.finished_at = timezone.now()
        change.save(update_fields=["status", "finished_at"])
        if change.status == ChangeStatus.AWAITING_APPROVAL:
            events.notify(
                f"{change}: planned, awaiting a Project admin's approval",
                severity=Event.Severity.WARNING,
                obj=change,
                project=change.project_id,
                kind="change.awaiting_approval",
            )
    # The cards only: the change's My work row, read over every run, goes once with the
    # change below (once a card, it made planning 50 hosts quadratic: 0.7 of its 3.4 s).
    for run in change.runs.select_related("host", "change"):
        publish_card(run)
    audit.record(
        "change.revert_plan" if change.reverts_id else "change.plan",
        obj=change,
        project=change.project,
        actor=change.created_by,
        after={"hosts": diffs(change)},
    )
    publish_change(change)
    return change


def _refuse_plan(change: Change, reason: str) -> Change:
    """A change whose settings break a rule: failed before any host is read, no run created."""
    change.status = ChangeStatus.FAILED
    change.finished_at = timezone.now()
    change.save(update_fields=["status", "finished_at"])
    audit.record(
        "change.plan", obj=change, project=change.project, actor=change.created_by, after={"refused": reason}
    )
    events.notify(
        reason, severity=Event.Severity.ERROR, obj=change, project=change.project_id, kind="change.failed"
    )
    publish_change(change)
    return change


def not_planned(change: Change, reason: str) -> Change:
    """A change whose planning task could not be queued: failed, nothing read."""
    return _refuse_plan(change, reason)


def can(user: Any, action: str, change: Change) -> bool:
    return access.can(user, action, change.project_id)


def diffs(change: Change) -> dict[str, Any]:
    return {
        run.host.name: {
            "state": run.state,
            "reason": run.reason,
            "diff": "".join(f["diff"] for f in run.files if not f.get("secret")),
            "restarts": run.restarts,
        }
        for run in change.runs.select_related("host")
    }


def profile_change(profile: Profile, user: Any, title: str = "") -> Change:
    """A new change that applies ``profile``'s settings, to be planned on the hosts chosen.

    Raises ChangeError (and creates nothing) when the stored settings break a rule,
    as a profile saved before the rule would."""
    refuse_stored(profile.settings, f"profile {profile.name}")
    return Change.objects.create(
        project=profile.project,
        title=(title or f"Apply profile {profile.name}")[:200],
        profile=profile,
        settings=profile.settings,
        created_by=user,
    )
