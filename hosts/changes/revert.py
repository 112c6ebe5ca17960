"""Undoing a change: plan the originals kept by its runs back onto the hosts."""

from __future__ import annotations

from typing import Any

from hosts import ssh
from hosts.changes.desired import SECRET_FILES, TLS_FILES, is_rotation
from hosts.changes.errors import ChangeError
from hosts.changes.files import SettingsError, firewall, sshd
from hosts.changes.render import Checks, HostPlan, changed, file_entry, restarts_for, sha, with_restart
from hosts.changes.runs import backups_of
from hosts.models import Host
from hosts.models.changes import (
    Change,
    ChangeRun,
    ChangeStatus,
    RunState,
)
from portal import audit


def revert_inputs(
    change: Change, hosts: list[Host]
) -> list[tuple[ssh.Access, dict[str, tuple[bool, bytes, int]]]]:
    original = change.reverts
    assert original is not None
    inputs = []
    for host in hosts:
        run = ChangeRun.objects.filter(change=original, host=host).first()
        backups = backups_of(run.pk) if run else {}
        inputs.append((ssh.Access.of(host), backups))
    return inputs


async def plan_revert_one(item: tuple[ssh.Access, dict[str, tuple[bool, bytes, int]]]) -> HostPlan:
    access, backups = item
    if not backups:
        return HostPlan(state=RunState.UNCHANGED, reason="the change wrote nothing here")
    try:
        async with ssh.connect(access) as conn, ssh.sftp_client(conn) as sftp:
            current = await ssh.read_files(sftp, list(backups))
            docker_state = await ssh.run(conn, "systemctl is-active docker 2>/dev/null || true", timeout=30)
    except ssh.SSHError as exc:
        return HostPlan(state=RunState.UNREACHABLE, reason=str(exc))
    entries = []
    for path, (existed, data, mode) in backups.items():
        remote = current[path]
        secret = path in SECRET_FILES
        try:
            original_text = data.decode() if existed else None
            entry = file_entry(remote, original_text) if not secret else None
        except (UnicodeDecodeError, SettingsError):
            entry = None
        if entry is None:
            # A private key or a binary file: restored byte for byte, never shown.
            entry = {
                "path": path,
                "existed": remote.exists,
                "mode": mode,
                "before": "",
                "after": "",
                "remove": not existed,
                "before_sha": sha(remote.data) if remote.exists else "",
                "after_sha": sha(data) if existed else "",
                "diff": f"--- a{path}\n+++ b{path}\n(contents not shown; restored byte for byte)\n",
                "secret": True,
            }
        if changed(entry):
            entries.append(entry)
    plan = HostPlan(files=entries)
    plan.restarts = restarts_for(entries, docker_running=str(docker_state.stdout or "").strip() == "active")
    if any(e["path"] in TLS_FILES for e in entries):
        plan.restarts = with_restart(plan.restarts, "docker")
    originally_open = set()
    now_open = set()
    if firewall.PATH in backups and backups[firewall.PATH][0]:
        originally_open = firewall.open_ports(backups[firewall.PATH][1].decode())
        if current[firewall.PATH].exists:
            now_open = firewall.open_ports(current[firewall.PATH].data.decode())
    plan.checks = Checks(
        open=[list(p) for p in sorted(originally_open - now_open)],
        closed=[list(p) for p in sorted(now_open - originally_open)],
    )
    if sshd.PATH in backups and backups[sshd.PATH][0]:
        port = int(sshd.effective(backups[sshd.PATH][1].decode()).get("Port") or 22)
        if port != access.port:
            plan.checks.ssh_port = port
    if not entries:
        plan.state = RunState.UNCHANGED
    return plan


def start_revert(original: Change, user: Any) -> Change:
    original = Change.objects.select_related("project").get(pk=original.pk)
    if is_rotation(original):
        raise ChangeError("a credential rotation is not undone: the old credentials are not put back")
    if original.status not in (ChangeStatus.APPLIED, ChangeStatus.PARTIAL, ChangeStatus.FAILED):
        raise ChangeError("only a change that was applied can be reverted")
    hosts = [run.host for run in original.runs.select_related("host") if run.backups.exists()]
    if not hosts:
        raise ChangeError("this change wrote nothing, so there is nothing to revert")
    change = Change.objects.create(
        project=original.project,
        title=f"Revert {original}"[:200],
        settings={},
        reverts=original,
        created_by=user,
    )
    audit.record(
        "change.revert", obj=change, project=change.project, actor=user, after={"reverts": original.pk}
    )
    return change
