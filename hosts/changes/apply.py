"""Applying one host's part of a change over SSH: keep the originals, write to a temporary
name, validate it, move it into place, restart, verify; on any failure restore the
originals, restart and verify again.

SSH work is async (asyncssh); the ORM is reached through ``_db`` (one thread per
process, so SQLite is never written from two threads; its connection is closed after each
call, so it goes back to the pool and a database restart costs no more than one step)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from channels.db import database_sync_to_async

from hosts import ca as portal_ca
from hosts import ssh
from hosts.changes import drift, reloads
from hosts.changes.desired import TLS_FILES
from hosts.changes.errors import StepFailed
from hosts.changes.files import SettingsError, daemon_json, docker, firewall, sshd, sysctl
from hosts.changes.render import sha
from hosts.changes.runs import (
    Context,
    backups_of,
    claim,
    finish_run,
    keep_backups,
    save_kernel_values,
)
from hosts.changes.step_reports import Reports
from hosts.changes.verify import listener_wait, verify_run
from hosts.models.changes import (
    RunState,
)

T = TypeVar("T")


def _db(fn: Callable[..., T]) -> Callable[..., Any]:
    return database_sync_to_async(fn, thread_sensitive=True)


async def apply_run(run_id: int) -> str:
    """Apply one host's part of a change; returns the final state."""
    context = await _db(claim)(run_id)
    if context is None:
        return "skipped"
    report = Reports(run_id)
    written = False
    endpoint: dict[str, Any] | None = None
    try:
        # The session stays open to the end: if the change breaks new logins
        # (sshd down, port moved), the rollback still goes through it.
        async with ssh.connect(context.access) as conn:
            try:
                async with ssh.sftp_client(conn) as sftp:
                    writes = await _prepare(context, sftp, report)
                    new_sysctl = writes.get(sysctl.PATH, (None, 0, False))[0]
                    if new_sysctl and not context.reverting:
                        await _keep_kernel_values(context, conn, sysctl.keys_of(new_sysctl.decode()))
                    await report("validating", 40, f"validating {len(writes)} file(s) on the host")
                    temps = await _write_temps(conn, sftp, writes)
                    await report("writing", 55, "moving the new files into place")
                    written = True
                    for path, (_data, _mode, remove) in writes.items():
                        if remove:
                            await ssh.remove(conn, path)
                        elif path in temps:
                            await ssh.rename_into_place(sftp, temps[path], path)
                await _restart(conn, context.restarts, report, progress=65)
                if context.reverting:
                    await _put_back_kernel_values(conn, context.kernel_before, report, progress=70)
                await report("verifying", 85, "verifying from the portal")
                endpoint = await verify_run(context, report)
            except (StepFailed, ssh.SSHError, SettingsError) as exc:
                reason = exc.reason if isinstance(exc, StepFailed) else str(exc)
                if written:
                    return await _roll_back(context, report, f"{report.step} failed: {reason}", conn)
                raise
    except (StepFailed, ssh.SSHError, SettingsError) as exc:
        reason = exc.reason if isinstance(exc, StepFailed) else str(exc)
        state = RunState.UNREACHABLE if isinstance(exc, ssh.HostUnreachable) else RunState.FAILED
        await report.settled()
        await _db(finish_run)(
            run_id, state, f"{report.step} failed: {reason}; nothing was changed on the host"
        )
        return state
    await report.settled()
    await _db(finish_run)(run_id, RunState.APPLIED, "", endpoint=endpoint)
    await _db(drift.after_apply)(run_id)
    return RunState.APPLIED


async def _write_temps(
    conn: Any, sftp: Any, writes: Mapping[str, tuple[bytes | None, int, bool]]
) -> dict[str, str]:
    """Every new file under a temporary name beside its target, validated there:
    an invalid file never replaces a working one."""
    temps: dict[str, str] = {}
    try:
        for path, (data, mode, _remove) in writes.items():
            if data is not None:
                temps[path] = await ssh.write_temp(sftp, path, data, mode)
        await _validate(conn, temps)
    except BaseException:
        for temp in temps.values():
            with contextlib.suppress(Exception):
                await sftp.remove(temp)
        raise
    return temps


async def _prepare(
    context: Context, sftp: Any, report: Callable[..., Any]
) -> dict[str, tuple[bytes | None, int, bool]]:
    """Read the current files, keep the originals, and decide what to write: path -> (data, mode, remove)."""
    await report("reading", 15, "reading the current files")
    paths = [f["path"] for f in context.files]
    if context.checks.docker_tls and not context.reverting:
        paths += list(TLS_FILES)
    if context.reverting:
        paths = list(dict.fromkeys([*paths, *context.restore]))
    current = await ssh.read_files(sftp, paths)
    writes: dict[str, tuple[bytes | None, int, bool]] = {}
    for entry in context.files:
        remote = current[entry["path"]]
        now = sha(remote.data) if remote.exists else ""
        planned_after = "" if entry["remove"] else entry["after_sha"]
        if now not in (entry["before_sha"], planned_after):
            raise StepFailed(
                "reading",
                f"{entry['path']} changed on the host since the plan; plan again to see the new diff",
            )
    await report("backing up", 25, f"keeping the original of {len(paths)} file(s) in the portal")
    await _db(keep_backups)(context.run_id, current)
    if context.reverting:
        for path, (existed, original, mode) in context.restore.items():
            writes[path] = (original if existed else None, mode, not existed)
        return writes
    for entry in context.files:
        data = None if entry["remove"] else entry["after"].encode()
        writes[entry["path"]] = (data, entry["mode"], entry["remove"])
    if context.checks.docker_tls:
        issued = await _db(portal_ca.issue_server)(await _names(context, sftp))
        # dockerd's --tlscacert: this host's own client CA, so no other host's certificate passes.
        context.client_ca = await asyncio.to_thread(portal_ca.new_client_ca, context.access.name)
        writes[docker.CA] = (context.client_ca.cert.encode(), 0o644, False)
        writes[docker.CERT] = (issued.cert.encode(), 0o644, False)
        writes[docker.KEY] = (issued.key.encode(), 0o600, False)
        context.server_cert = issued.cert
        await report(
            "backing up", 30, "issued a server certificate for " + ", ".join(await _names(context, sftp))
        )
    return writes


async def _names(context: Context, sftp: Any) -> list[str]:
    names = [n for n in context.host_names if n]
    with contextlib.suppress(Exception):
        hostname = (await ssh.read_files(sftp, ["/etc/hostname"]))["/etc/hostname"]
        if hostname.exists:
            names.append(hostname.data.decode().strip())
    return list(dict.fromkeys(names))


async def _validate(conn: Any, temps: Mapping[str, str]) -> None:
    for path, temp in temps.items():
        if path == sshd.PATH:
            result = await ssh.run(conn, f"sshd -t -f {shlex.quote(temp)}", timeout=30)
            if result.exit_status != 0:
                raise StepFailed("validating", f"sshd -t refused the new sshd_config: {ssh.output(result)}")
        elif path == firewall.PATH:
            result = await ssh.run(conn, f"iptables-restore --test < {shlex.quote(temp)}", timeout=30)
            if result.exit_status != 0:
                raise StepFailed(
                    "validating", f"iptables-restore --test refused the rules: {ssh.output(result)}"
                )
        elif path == daemon_json.PATH:
            result = await ssh.run(conn, f"python3 -m json.tool {shlex.quote(temp)} >/dev/null", timeout=30)
            if result.exit_status not in (0, 127):
                raise StepFailed("validating", f"daemon.json is not valid JSON: {ssh.output(result)}")
        elif path == sysctl.PATH:
            await _validate_sysctl(conn, temp)


async def _validate_sysctl(conn: Any, temp: str) -> None:
    """Every key of the new file is one this host's kernel has (``sysctl -p`` would apply the
    known ones and fail on the rest, leaving half a change)."""
    keys = sysctl.keys_of(await _read_text(conn, temp))
    checks = " ".join(f"[ -e {shlex.quote(sysctl.proc_path(k))} ] || echo {shlex.quote(k)};" for k in keys)
    result = await ssh.run(conn, checks or "true", timeout=30)
    unknown = str(result.stdout or "").split()
    if unknown:
        raise StepFailed("validating", f"this host's kernel has no parameter {', '.join(unknown)}")


async def _keep_kernel_values(context: Context, conn: Any, keys: list[str]) -> None:
    """The kernel's values now of ``keys``, kept with the run for a rollback or a revert."""
    known = [k for k in keys if k]
    if not known:
        return
    checks = " ".join(
        f"[ -e {shlex.quote(sysctl.proc_path(k))} ] && echo {shlex.quote(k)}=$(sysctl -n {shlex.quote(k)});"
        for k in known
    )
    result = await ssh.run(conn, checks, timeout=30)
    for line in str(result.stdout or "").splitlines():
        key, _, value = line.partition("=")
        if key in known:
            context.kernel_before[key] = " ".join(value.split())
    await _db(save_kernel_values)(context.run_id, context.kernel_before)


async def _put_back_kernel_values(
    conn: Any, values: Mapping[str, str], report: Callable[..., Any], *, progress: int
) -> None:
    if not values:
        return
    pairs = " ".join(shlex.quote(f"{key}={value}") for key, value in values.items())
    result = await ssh.run(conn, f"sysctl -q -w {pairs} 2>&1", timeout=30)
    if result.exit_status != 0:
        raise StepFailed("restarting", f"the kernel's earlier values could not be set: {ssh.output(result)}")
    await report(
        "restarting", progress, f"{len(values)} kernel parameter(s) set back to their earlier values"
    )


async def _read_text(conn: Any, path: str) -> str:
    result = await ssh.run(conn, f"cat {shlex.quote(path)}", timeout=30)
    return str(result.stdout or "")


async def _restart(conn: Any, entries: list[str], report: Callable[..., Any], *, progress: int) -> None:
    """Each service of the plan restarted, or reloaded where the plan says a reload takes the
    change (hosts.changes.reloads): an sshd reload keeps every open session."""
    if not entries:
        return
    services = reloads.services(entries)
    if "docker" in reloads.restarting(entries):
        await ssh.run(conn, "systemctl daemon-reload >/dev/null 2>&1", timeout=60)
    for entry in entries:
        service = reloads.service_of(entry)
        if service == "sysctl":
            await report("restarting", progress, "applying the kernel parameters")
            path = shlex.quote(sysctl.PATH)
            # Absent after a rollback of a new file: nothing of it left to apply.
            result = await ssh.run(conn, f"if [ -e {path} ]; then sysctl -p {path} 2>&1; fi", timeout=60)
            if result.exit_status != 0:
                raise StepFailed("restarting", f"the kernel refused a parameter: {ssh.output(result)[-500:]}")
            continue
        if reloads.is_reload(entry):
            await _reload(conn, service, report, progress=progress)
            continue
        if service == "docker":
            active = await ssh.run(conn, "systemctl is-active docker", timeout=30)
            if str(active.stdout or "").strip() != "active" and "iptables" in services and len(services) > 1:
                continue  # not running: only the firewall asked for it
        await report("restarting", progress, f"restarting {service}")
        await _restarted(conn, service, timeout=120)


#: Printed between ``systemctl restart`` succeeding and ``systemctl is-active`` (_restarted).
_DONE = "--portal-systemctl-done--"


async def _restarted(conn: Any, service: str, *, timeout: float) -> None:
    """``systemctl restart SERVICE``, then that it runs, in one command: one SSH channel a
    host instead of two (a push to 50 hosts is bound by the CPU both ends share)."""
    command = f"systemctl restart {service} 2>&1 && echo {_DONE} && systemctl is-active {service}"
    said = ssh.output(await ssh.run(conn, command, timeout=timeout))
    if _DONE not in said:
        raise StepFailed("restarting", f"{service} did not restart: {said[-500:]}")
    if said.rsplit(_DONE, 1)[1].strip() != "active":
        raise StepFailed("restarting", f"{service} is not running after the restart")


async def _reload(conn: Any, service: str, report: Callable[..., Any], *, progress: int) -> None:
    """``systemctl reload`` (SIGHUP). sshd's reload is verified by the new login that
    verifying makes anyway; dockerd's by reading its settings back (a refused reload
    leaves it running on the old ones)."""
    await report("reloading", progress, f"reloading {service}: sessions already open carry on")
    # No ``is-active`` after it: a reload that systemd refused fails here, and what it took
    # is checked by what follows (sshd: the new login; dockerd: its info). The lab's
    # systemctl is a Python program, and a second call was a tenth of a 50-host push.
    result = await ssh.run(conn, f"systemctl reload {service} 2>&1", timeout=60)
    if result.exit_status != 0:
        raise StepFailed("reloading", f"{service} did not reload: {ssh.output(result)[-500:]}")
    if service == "docker":
        await _docker_took(conn, report, progress=progress)


#: Seconds dockerd gets to apply a reload (it does so after the signal, not before it returns).
DOCKER_RELOAD_TIMEOUT = 20.0


async def _docker_took(conn: Any, report: Callable[..., Any], *, progress: int) -> None:
    """A new API call (``docker info``) until dockerd reports the reloadable options of the
    daemon.json now in place, or the timeout."""
    config = await _read_text(conn, daemon_json.PATH)
    problems = ["docker info was not read"]
    deadline = asyncio.get_running_loop().time() + DOCKER_RELOAD_TIMEOUT
    while True:
        result = await ssh.run(conn, "docker info --format '{{json .}}' 2>&1", timeout=30)
        if result.exit_status != 0:
            problems = [f"docker info failed: {ssh.output(result)[-300:]}"]
        else:
            try:
                info = json.loads(str(result.stdout or "{}"))
            except ValueError:
                info = None
            problems = (
                daemon_json.reload_problems(config, info)
                if isinstance(info, dict)
                else ["docker info is not JSON"]
            )
            if not problems:
                break
        if asyncio.get_running_loop().time() > deadline:
            raise StepFailed("reloading", "dockerd did not take the new daemon.json: " + "; ".join(problems))
        await asyncio.sleep(0.2)
    await report("reloading", progress, "dockerd answers a new API call with the daemon.json settings")


async def _roll_back(context: Context, report: Reports, reason: str, conn: Any) -> str:
    await report("rolling back", 90, f"{reason}; restoring the original files")
    originals = await _db(backups_of)(context.run_id)

    async def restore(session: Any) -> None:
        async with ssh.sftp_client(session) as sftp:
            for path, (existed, data, mode) in originals.items():
                if existed:
                    await ssh.write_atomic(sftp, path, data, mode)
                else:
                    await ssh.remove(session, path)
        await _restart(session, context.restarts, report, progress=95)
        await _put_back_kernel_values(session, context.kernel_before, report, progress=96)

    try:
        try:
            await restore(conn)
        except ssh.HostUnreachable:
            # The first session died with the change (a restart took it down): a new one.
            async with ssh.connect(context.access) as fresh:
                await restore(fresh)
        problem = await ssh.login_works(context.access, wait_for_listener=listener_wait(context.restarts))
        if problem:
            raise StepFailed("verifying the rollback", problem)
        await report(
            "rolling back", 98, f"originals restored; a new SSH login on port {context.access.port} works"
        )
    except (StepFailed, ssh.SSHError) as exc:
        await report.settled()
        await _db(finish_run)(context.run_id, RunState.FAILED, f"{reason}; the rollback failed too: {exc}")
        return RunState.FAILED
    await report.settled()
    await _db(finish_run)(context.run_id, RunState.ROLLED_BACK, f"rolled back: {reason}")
    return RunState.ROLLED_BACK
