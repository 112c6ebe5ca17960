"""Configuration changes: plan, approve, apply, verify, roll back, drift, undo.

The flow (design.md, "How data flows"): desired settings -> plan (read the
current files over SSH, render, diff; nothing is written) -> approval -> apply,
one Celery task per host (keep the originals in the database, write to a
temporary name, validate it, move it into place, restart, verify, and on any
failure restore the originals, restart and verify again) -> progress events
per step -> audit. The database is the truth: a task may die at any line; its
host is then found ``interrupted`` with its backups kept, and applying again is
safe because backups are taken only once and a file already rewritten counts
as planned.

SSH work is async (asyncssh, many hosts at once); the ORM is reached through
``_db`` (one thread per process, so SQLite is never written from two threads).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import difflib
import fnmatch
import hashlib
import json
import logging
import shlex
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from hosts import ssh
from hosts.changes.files import SettingsError, daemon_json, docker, firewall, sshd, sysctl
from hosts.models import Host
from hosts.models.changes import (
    Change,
    ChangeHost,
    ChangeStatus,
    Drift,
    DriftState,
    FileBackup,
    HostState,
    Profile,
)
from hosts.provision import ca as portal_ca
from portal import audit, events, live
from portal.models import Event

log = logging.getLogger(__name__)
T = TypeVar("T")

#: A run still "applying" without a heartbeat for this long lost its worker.
INTERRUPTED_AFTER = timedelta(minutes=5)
#: Seconds to wait for a port to answer (or not) from outside the host.
PORT_CHECK_TIMEOUT = 3.0
#: Where each section of a profile's settings lives on a host, and what reloads it.
SECTIONS: dict[str, str] = {
    "sshd": sshd.PATH,
    "daemon_json": daemon_json.PATH,
    "firewall": firewall.PATH,
    "docker_api": docker.DROP_IN,
    "sysctl": sysctl.PATH,
}
SERVICE = {
    sshd.PATH: "sshd",
    daemon_json.PATH: "docker",
    firewall.PATH: "iptables",
    docker.DROP_IN: "docker",
    sysctl.PATH: "sysctl",  # not a service: ``sysctl -p`` applies the file (see _restart)
}
#: Restart order: kernel parameters first (services restart on them), the firewall next
#: (its restart flushes Docker's chains, so docker follows), sshd last so a broken
#: restart elsewhere is rolled back over a working sshd.
RESTART_ORDER = ("sysctl", "iptables", "docker", "sshd")
#: Hosts of a change that (re)applying takes on.
RUNNABLE = (
    HostState.PLANNED,
    HostState.INTERRUPTED,
    HostState.FAILED,
    HostState.ROLLED_BACK,
    HostState.UNREACHABLE,
)
TLS_FILES = (docker.CA, docker.CERT, docker.KEY)
SECRET_FILES = {docker.KEY}
#: The settings key of a credential rotation (hosts.changes.rotation), a change without a profile.
ROTATE = "rotate_credentials"


class ChangeError(Exception):
    """Something a person asked that cannot be done (bad settings, wrong state).

    ``problems`` lists each refused setting when the settings are at fault.
    """

    def __init__(self, message: str, problems: Iterable[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class Problem:
    """One refused setting: its section (``sshd``...), its key when known, and why."""

    section: str
    key: str
    message: str


def _db(fn: Callable[..., T]) -> Callable[..., Any]:
    return sync_to_async(fn, thread_sensitive=True)


# ---------------------------------------------------------------- settings


#: Each section's check: the renderer's own normalize, which also refuses what is root on
#: the host. Every way in (the profile form, the API, ``manage.py change``, planning and
#: applying a change) goes through validate_settings, so these are the only rules.
CHECKS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "sshd": sshd.normalize,
    "daemon_json": daemon_json.normalize,
    "firewall": firewall.normalize,
    "docker_api": docker.normalize,
    "sysctl": sysctl.normalize,
}


def settings_problems(settings: Any) -> list[Problem]:
    """Every problem of a profile's settings (empty: they may be planned)."""
    if not isinstance(settings, Mapping):
        return [Problem("", "", "settings must map section names to their settings")]
    problems = [
        Problem(str(name), "", f"unknown section {name!r}")
        for name in sorted(set(settings) - set(SECTIONS), key=str)
    ]
    for name, check in CHECKS.items():
        if name not in settings:
            continue
        section = settings[name] or {}
        if not isinstance(section, Mapping):
            problems.append(Problem(name, "", f"the {name} settings must map names to values"))
            continue
        try:
            check(section)
        except SettingsError as exc:
            problems.append(Problem(name, exc.key, str(exc)))
    return problems


def validate_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Check a profile's settings; raise ChangeError with every problem in one message."""
    problems = settings_problems(settings)
    if problems:
        raise ChangeError("; ".join(p.message for p in problems), problems)
    return dict(settings)


def is_rotation(change: Change) -> bool:
    return ROTATE in (change.settings or {})


def _refuse_stored(settings: Any, what: str) -> None:
    """Settings stored before a rule existed are checked again before SSH is touched."""
    problems = settings_problems(settings)
    if problems:
        raise ChangeError(f"{what} is refused: " + "; ".join(p.message for p in problems), problems)


def _firewall_desired(settings: Mapping[str, Any]) -> dict[str, list[str]] | None:
    """The profile's firewall section, plus the port the Docker API change needs."""
    wanted = dict(settings.get("firewall") or {})
    port = docker.port(settings.get("docker_api") or {}) if "docker_api" in settings else None
    if "firewall" not in settings and port is None:
        return None
    opened = list(wanted.get("open") or [])
    closed = list(wanted.get("closed") or [])
    if port is not None:
        opened.append(f"tcp/{port}")
        if port == docker.TLS_PORT:
            # Moving to TLS shuts the plain API another hand may have opened.
            closed.append(f"tcp/{docker.PLAIN_PORT}")
    return {
        "open": list(dict.fromkeys(opened)),
        "closed": [p for p in dict.fromkeys(closed) if p not in opened],
    }


def hosts_of(profile: Profile) -> list[Host]:
    """The hosts a profile applies to: assigned directly or through a tag, in its project."""
    return list(
        Host.objects.filter(project=profile.project)
        .filter(Q(profiles=profile) | Q(tags__in=profile.tags.all()))
        .distinct()
        .order_by("name")
    )


# ---------------------------------------------------------------- rendering one host


@dataclass
class HostPlan:
    state: str = HostState.PLANNED
    reason: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)
    expect: dict[str, Any] = field(default_factory=dict)
    new_ssh_port: int | None = None
    #: A rotation's new keys (JSON), kept encrypted on the run until applied.
    credentials: str = field(default="", repr=False)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _text(remote: ssh.RemoteFile) -> str:
    try:
        return remote.data.decode()
    except UnicodeDecodeError:
        raise SettingsError(f"{remote.path} is not UTF-8 text; the portal leaves it alone") from None


def unified_diff(path: str, before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a{path}",
            tofile=f"b{path}",
        )
    )


def _file_entry(remote: ssh.RemoteFile, after: str | None) -> dict[str, Any]:
    """One file of a plan; ``after`` None means: the file is removed."""
    before = _text(remote) if remote.exists else ""
    new = "" if after is None else after
    return {
        "path": remote.path,
        "existed": remote.exists,
        "mode": remote.mode if remote.exists else (0o600 if remote.path == sshd.PATH else 0o644),
        "before": before,
        "after": new,
        "remove": after is None,
        "before_sha": _sha(remote.data) if remote.exists else "",
        "after_sha": "" if after is None else _sha(new.encode()),
        "diff": unified_diff(remote.path, before, new),
    }


def _changed(entry: Mapping[str, Any]) -> bool:
    if entry["remove"]:
        return bool(entry["existed"])
    return not entry["existed"] or entry["before_sha"] != entry["after_sha"]


def render_host(
    settings: Mapping[str, Any], files: Mapping[str, ssh.RemoteFile]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every managed file's plan entry for these settings, and the effective values
    the lock-out guard needs. Pure: no host is touched."""
    entries = []
    facts: dict[str, Any] = {}
    if "sshd" in settings:
        remote = files[sshd.PATH]
        entries.append(_file_entry(remote, sshd.render(_text(remote), settings["sshd"] or {})))
    if "daemon_json" in settings:
        remote = files[daemon_json.PATH]
        current = _text(remote) if remote.exists else ""
        rendered = daemon_json.render(current, settings["daemon_json"] or {})
        if rendered != current or remote.exists:
            entries.append(_file_entry(remote, rendered))
    if "docker_api" in settings:
        remote = files[docker.DROP_IN]
        unit = _text(files[docker.UNIT])
        rendered = docker.render(
            _text(remote) if remote.exists else "", settings["docker_api"] or {}, unit_text=unit
        )
        entries.append(_file_entry(remote, rendered or None))
    if "sysctl" in settings:
        remote = files[sysctl.PATH]
        entries.append(
            _file_entry(remote, sysctl.render(_text(remote) if remote.exists else "", settings["sysctl"]))
        )
    wanted_firewall = _firewall_desired(settings)
    ip4save = _text(files[firewall.PATH])
    if wanted_firewall is not None:
        rendered = firewall.render(ip4save, wanted_firewall)
        entries.append(_file_entry(files[firewall.PATH], rendered))
        ip4save = rendered
        facts["firewall"] = firewall.normalize(wanted_firewall)
    facts["open_ports"] = firewall.open_ports(ip4save)
    sshd_text = next((e["after"] for e in entries if e["path"] == sshd.PATH), None)
    if sshd_text is None and files.get(sshd.PATH) is not None and files[sshd.PATH].exists:
        sshd_text = _text(files[sshd.PATH])
    facts["sshd"] = sshd.effective(sshd_text or "")
    return entries, facts


def lockout_reasons(
    facts: Mapping[str, Any], *, user: str, port: int, groups: Iterable[str] = ()
) -> list[str]:
    """Why these settings would lock the portal out of the host (empty: they would not)."""
    groups = list(groups)
    reasons = []
    values = {k.lower(): v for k, v in facts.get("sshd", {}).items()}
    root_login = values.get("permitrootlogin", "").lower()
    if user == "root" and root_login in ("no", "forced-commands-only"):
        reasons.append(f"PermitRootLogin {root_login} would lock the portal out: it logs in as root")
    if values.get("pubkeyauthentication", "").lower() == "no":
        reasons.append("PubkeyAuthentication no would lock the portal out: it logs in with a key")
    if "allowusers" in values:
        patterns = [p.split("@", 1)[0] for p in values["allowusers"].split()]
        if not any(fnmatch.fnmatchcase(user, p) for p in patterns):
            reasons.append(
                f"AllowUsers {values['allowusers']} leaves out {user}, the user the portal logs in as"
            )
    if "allowgroups" in values:
        patterns = values["allowgroups"].split()
        if not any(fnmatch.fnmatchcase(g, p) for g in groups for p in patterns):
            names = " ".join(groups) or "none"
            reasons.append(f"AllowGroups {values['allowgroups']} has none of {user}'s groups ({names})")
    new_port = int(values.get("port") or port)
    if ("tcp", new_port) not in facts.get("open_ports", set()):
        reasons.append(f"the firewall would not let SSH in on tcp/{new_port}: the portal would be locked out")
    for proto, closed in (facts.get("firewall") or {}).get("closed", []):
        if proto == "tcp" and closed in (port, new_port):
            reasons.append(f"closing tcp/{closed} would lock the portal out: it is the SSH port")
    return list(dict.fromkeys(reasons))


def _restarts(entries: Iterable[Mapping[str, Any]], *, docker_running: bool) -> list[str]:
    services = {SERVICE[e["path"]] for e in entries if _changed(e) and e["path"] in SERVICE}
    if "iptables" in services and docker_running:
        services.add("docker")  # restarting iptables flushes Docker's chains
    return [s for s in RESTART_ORDER if s in services]


# ---------------------------------------------------------------- plan


@dataclass(frozen=True)
class _PlanInput:
    host_id: int
    access: ssh.Access
    settings: dict[str, Any]


def _paths(settings: Mapping[str, Any]) -> list[str]:
    """The files to read for these settings (sshd's and the firewall's always: the lock-out guard)."""
    paths = [sshd.PATH, firewall.PATH]
    if "daemon_json" in settings:
        paths.append(daemon_json.PATH)
    if "docker_api" in settings:
        paths += [docker.DROP_IN, docker.UNIT]
    if "sysctl" in settings:
        paths.append(sysctl.PATH)
    return paths


async def _plan_one(item: _PlanInput) -> HostPlan:
    settings = item.settings
    paths = _paths(settings)
    try:
        async with ssh.connect(item.access) as conn:
            async with ssh.sftp_client(conn) as sftp:
                files = await ssh.read_files(sftp, paths)
            user = shlex.quote(item.access.user)
            facts_cmd = f"id -Gn {user} 2>/dev/null; echo; systemctl is-active docker 2>/dev/null || true"
            facts_out = str((await ssh.run(conn, facts_cmd, timeout=30)).stdout or "").split("\n")
    except ssh.SSHError as exc:
        return HostPlan(state=HostState.UNREACHABLE, reason=str(exc))
    groups = facts_out[0].split() if facts_out else []
    docker_running = any(line.strip() == "active" for line in facts_out[1:])
    for required in (sshd.PATH, firewall.PATH):
        if not files[required].exists:
            return HostPlan(state=HostState.REFUSED, reason=f"{required} is missing on the host")
    if "docker_api" in settings and not files[docker.UNIT].exists:
        return HostPlan(state=HostState.REFUSED, reason=f"{docker.UNIT} is missing: Docker is not installed")
    try:
        entries, facts = render_host(settings, files)
    except SettingsError as exc:
        return HostPlan(state=HostState.REFUSED, reason=str(exc))
    plan = HostPlan(files=[e for e in entries if _changed(e)])
    plan.restarts = _restarts(plan.files, docker_running=docker_running)
    reasons = lockout_reasons(facts, user=item.access.user, port=item.access.port, groups=groups)
    if docker.port(settings.get("docker_api") or {}) is not None and not docker_running:
        reasons.append("Docker is not running on this host, so its remote API cannot be turned on")
    if reasons:
        plan.state, plan.reason = HostState.REFUSED, "; ".join(reasons)
        return plan
    new_port = int(facts["sshd"].get("Port") or item.access.port)
    plan.new_ssh_port = new_port if new_port != item.access.port else None
    fw = facts.get("firewall") or {}
    plan.expect = {
        "open": [list(p) for p in fw.get("open", [])],
        "closed": [list(p) for p in fw.get("closed", [])],
    }
    if "docker_api" in settings and docker.port(settings["docker_api"] or {}) == docker.TLS_PORT:
        plan.expect["docker_tls"] = [[docker.TLS_PORT]]
        # Certificates are issued at apply time, so a new plan never carries a private key.
        plan.restarts = [s for s in RESTART_ORDER if s in {*plan.restarts, "docker"}]
    if plan.new_ssh_port:
        plan.expect["ssh_port"] = [[plan.new_ssh_port]]
    if "sysctl" in settings:
        plan.expect["sysctl"] = [[k, v] for k, v in sysctl.normalize(settings["sysctl"]).items()]
    if not plan.files and not plan.expect.get("docker_tls"):
        plan.state = HostState.UNCHANGED
    return plan


def plan(change: Change, hosts: Iterable[Host]) -> Change:
    """Read each host's files, render, and store the diffs; nothing is written to a host."""
    from hosts.changes import rotation

    hosts = list(hosts)
    if not change.reverts_id and not is_rotation(change):
        try:
            _refuse_stored(change.settings, f"{change}")
        except ChangeError as exc:
            return _refuse_plan(change, str(exc))
    items = [_PlanInput(h.pk, ssh.Access.of(h), dict(change.settings)) for h in hosts]
    if change.reverts_id:
        plans = asyncio.run(ssh.bounded(_revert_inputs(change, hosts), _plan_revert_one))
    elif is_rotation(change):
        plans = asyncio.run(ssh.bounded(rotation.inputs(hosts), rotation.plan_one))
    else:
        plans = asyncio.run(ssh.bounded(items, _plan_one))
    with transaction.atomic():
        ChangeHost.objects.filter(change=change).delete()
        for host, result in zip(hosts, plans, strict=True):
            expect = dict(result.expect)
            ChangeHost.objects.create(
                change=change,
                host=host,
                state=result.state,
                reason=result.reason,
                files=result.files,
                restarts=result.restarts,
                expect=expect,
                credentials=result.credentials,
            )
        can_approve = change.created_by is not None and _can(change.created_by, "change.approve", change)
        change.status = ChangeStatus.PLANNED if can_approve else ChangeStatus.AWAITING_APPROVAL
        change.save(update_fields=["status"])
    for run in change.hosts.select_related("host", "change"):
        _publish_run(run)
    audit.record(
        "change.revert_plan" if change.reverts_id else "change.plan",
        obj=change,
        project=change.project,
        actor=change.created_by,
        after={"hosts": _diffs(change)},
    )
    _publish_change(change)
    return change


def _refuse_plan(change: Change, reason: str) -> Change:
    """A change whose settings break a rule: failed before any host is read, no run created."""
    change.status = ChangeStatus.FAILED
    change.finished_at = timezone.now()
    change.save(update_fields=["status", "finished_at"])
    audit.record(
        "change.plan", obj=change, project=change.project, actor=change.created_by, after={"refused": reason}
    )
    events.notify(reason, severity=Event.Severity.ERROR, obj=change, project=change.project_id)
    _publish_change(change)
    return change


def _can(user: Any, action: str, change: Change) -> bool:
    from portal import access

    return access.can(user, action, change.project_id)


def _diffs(change: Change) -> dict[str, Any]:
    return {
        run.host.name: {
            "state": run.state,
            "reason": run.reason,
            "diff": "".join(f["diff"] for f in run.files if not f.get("secret")),
            "restarts": run.restarts,
        }
        for run in change.hosts.select_related("host")
    }


# ---------------------------------------------------------------- approval


def approve(change: Change, user: Any, comment: str = "") -> None:
    with transaction.atomic():
        change = Change.objects.select_for_update().get(pk=change.pk)
        if change.status != ChangeStatus.AWAITING_APPROVAL:
            raise ChangeError(f"this change is {change.get_status_display().lower()}, not awaiting approval")
        change.status = ChangeStatus.APPROVED
        change.approved_by = user
        change.approved_at = timezone.now()
        change.save(update_fields=["status", "approved_by", "approved_at"])
    after: dict[str, Any] = {"hosts": _diffs(change)}
    if comment:
        after["comment"] = comment
    audit.record("change.approve", obj=change, project=change.project, actor=user, after=after)
    _publish_change(change)


def reject(change: Change, user: Any, comment: str = "") -> None:
    with transaction.atomic():
        change = Change.objects.select_for_update().get(pk=change.pk)
        if change.status not in (ChangeStatus.AWAITING_APPROVAL, ChangeStatus.PLANNED):
            raise ChangeError("only a plan that has not been applied can be rejected")
        change.status = ChangeStatus.REJECTED
        change.save(update_fields=["status"])
    # The comment lives in the trail: My work reads the decision back from there.
    after = {"comment": comment} if comment else None
    audit.record("change.reject", obj=change, project=change.project, actor=user, after=after)
    _publish_change(change)


def may_apply(change: Change, user: Any) -> bool:
    if change.status == ChangeStatus.APPROVED:
        return _can(user, "change.approve", change) or (
            change.created_by_id == getattr(user, "pk", None) and _can(user, "change.plan", change)
        )
    if change.status == ChangeStatus.PLANNED:
        return _can(user, "change.approve", change)
    if change.status in (ChangeStatus.PARTIAL, ChangeStatus.FAILED, ChangeStatus.APPLYING):
        # Applying again (interrupted or failed hosts) needs the same right as the first time.
        return _can(user, "change.approve", change) or (
            change.approved_by_id is not None and change.created_by_id == getattr(user, "pk", None)
        )
    return False


def start_apply(change: Change, user: Any) -> list[int]:
    """Queue one task per host still to do; returns the run ids queued."""
    from hosts.changes.tasks import apply_host

    runnable = RUNNABLE
    with transaction.atomic():
        change = Change.objects.select_for_update().get(pk=change.pk)
        if not may_apply(change, user):
            raise ChangeError("this change cannot be applied now, or not by you")
        if not change.reverts_id and not is_rotation(change):
            # Planned before a rule existed: what it would write is refused now.
            _refuse_stored(change.settings, f"{change}")
        sweep_interrupted(change=change)
        runs = list(change.hosts.select_for_update().filter(state__in=runnable))
        if not runs:
            raise ChangeError("no host of this change has anything left to apply")
        for run in runs:
            run.state, run.step, run.progress, run.reason = HostState.QUEUED, "queued", 0, run.reason
            run.save(update_fields=["state", "step", "progress", "reason"])
        change.status = ChangeStatus.APPLYING
        change.applied_by = user
        change.save(update_fields=["status", "applied_by"])
    audit.record(
        "change.apply", obj=change, project=change.project, actor=user, after={"hosts": _diffs(change)}
    )
    _publish_change(change)
    ids = [run.pk for run in runs]
    for run_id in ids:
        apply_host.delay(run_id)
    return ids


def sweep_interrupted(*, change: Change | None = None, older_than: timedelta = INTERRUPTED_AFTER) -> int:
    """Runs left "applying" by a worker that died: mark them interrupted (backups kept)."""
    stale = ChangeHost.objects.filter(state=HostState.APPLYING, heartbeat__lt=timezone.now() - older_than)
    if change is not None:
        stale = stale.filter(change=change)
    count = 0
    for run in stale.select_related("change", "host"):
        run.state = HostState.INTERRUPTED
        run.reason = (
            f"the worker stopped during “{run.step}”; the original files are kept; apply again to finish"
        )
        run.save(update_fields=["state", "reason"])
        count += 1
        _publish_run(run)
        _finish_change(run.change_id)
    return count


# ---------------------------------------------------------------- apply one host


class StepFailed(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


@dataclass
class _Context:
    run_id: int
    host_id: int
    change_id: int
    access: ssh.Access
    files: list[dict[str, Any]]
    restarts: list[str]
    expect: dict[str, Any]
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
    #: A credential rotation's new and old credentials (hosts.changes.rotation.Pending).
    rotation: Any = None


def _claim(run_id: int) -> _Context | None:
    """Take a run for this task; None when another task has it or it is done."""
    with transaction.atomic():
        run = ChangeHost.objects.select_for_update().select_related("host", "change").get(pk=run_id)
        fresh = run.heartbeat and run.heartbeat > timezone.now() - INTERRUPTED_AFTER
        if run.state == HostState.APPLYING and fresh:
            return None
        if run.state not in (HostState.QUEUED, HostState.APPLYING, HostState.INTERRUPTED):
            return None
        run.state, run.started, run.heartbeat = HostState.APPLYING, timezone.now(), timezone.now()
        run.step, run.progress = "connecting", 5
        run.save(update_fields=["state", "started", "heartbeat", "step", "progress"])
    host = run.host
    context = _Context(
        run_id=run.pk,
        host_id=host.pk,
        change_id=run.change_id,
        access=ssh.Access.of(host),
        files=run.files,
        restarts=run.restarts,
        expect=run.expect,
        host_names=[host.address, host.name],
        docker_url=host.docker_url,
        reverting=run.change.reverts_id is not None,
    )
    from hosts.changes import rotation

    context.rotation = rotation.pending(run)
    if context.reverting:
        original = ChangeHost.objects.filter(change_id=run.change.reverts_id, host=host).first()
        if original is not None:
            for backup in original.backups.all():
                context.restore[backup.path] = (
                    backup.existed,
                    base64.b64decode(str(backup.content)),
                    backup.mode,
                )
            if original.endpoint_before:
                context.endpoint_restore = json.loads(str(original.endpoint_before))
            context.kernel_before = dict(original.expect.get("kernel_before") or {})
    _publish_run(run)
    return context


def _report(run_id: int, step: str, progress: int, line: str = "") -> None:
    run = ChangeHost.objects.select_related("host", "change").get(pk=run_id)
    run.step, run.progress, run.heartbeat = step, progress, timezone.now()
    if line:
        run.log += f"{timezone.now():%H:%M:%S} {line}\n"
    run.save(update_fields=["step", "progress", "heartbeat", "log"])
    _publish_run(run)


def _keep_backups(run_id: int, originals: dict[str, ssh.RemoteFile]) -> None:
    """The original files, kept once: a second attempt must not back up our own writes."""
    run = ChangeHost.objects.get(pk=run_id)
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


def _backups(run_id: int) -> dict[str, tuple[bool, bytes, int]]:
    return {
        b.path: (b.existed, base64.b64decode(str(b.content)) if b.existed else b"", b.mode)
        for b in FileBackup.objects.filter(run_id=run_id)
    }


async def apply_run(run_id: int) -> str:
    """Apply one host's part of a change; returns the final state."""
    context = await _db(_claim)(run_id)
    if context is None:
        return "skipped"
    step = "connecting"

    async def report(name: str, progress: int, line: str = "") -> None:
        nonlocal step
        step = name
        await _db(_report)(run_id, name, progress, line)

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
                endpoint = await _verify(context, report)
            except (StepFailed, ssh.SSHError, SettingsError) as exc:
                reason = exc.reason if isinstance(exc, StepFailed) else str(exc)
                if written:
                    return await _roll_back(context, report, f"{step} failed: {reason}", conn)
                raise
    except (StepFailed, ssh.SSHError, SettingsError) as exc:
        reason = exc.reason if isinstance(exc, StepFailed) else str(exc)
        state = HostState.UNREACHABLE if isinstance(exc, ssh.HostUnreachable) else HostState.FAILED
        await _db(_finish_run)(run_id, state, f"{step} failed: {reason}; nothing was changed on the host")
        return state
    await _db(_finish_run)(run_id, HostState.APPLIED, "", endpoint=endpoint)
    return HostState.APPLIED


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
    context: _Context, sftp: Any, report: Callable[..., Any]
) -> dict[str, tuple[bytes | None, int, bool]]:
    """Read the current files, keep the originals, and decide what to write: path -> (data, mode, remove)."""
    await report("reading", 15, "reading the current files")
    paths = [f["path"] for f in context.files]
    if context.expect.get("docker_tls") and not context.reverting:
        paths += list(TLS_FILES)
    if context.reverting:
        paths = list(dict.fromkeys([*paths, *context.restore]))
    current = await ssh.read_files(sftp, paths)
    writes: dict[str, tuple[bytes | None, int, bool]] = {}
    for entry in context.files:
        remote = current[entry["path"]]
        now = _sha(remote.data) if remote.exists else ""
        planned_after = "" if entry["remove"] else entry["after_sha"]
        if now not in (entry["before_sha"], planned_after):
            raise StepFailed(
                "reading",
                f"{entry['path']} changed on the host since the plan; plan again to see the new diff",
            )
    await report("backing up", 25, f"keeping the original of {len(paths)} file(s) in the portal")
    await _db(_keep_backups)(context.run_id, current)
    if context.reverting:
        for path, (existed, data, mode) in context.restore.items():
            writes[path] = (data if existed else None, mode, not existed)
        return writes
    for entry in context.files:
        data = None if entry["remove"] else entry["after"].encode()
        writes[entry["path"]] = (data, entry["mode"], entry["remove"])
    if context.expect.get("docker_tls"):
        issued = await _db(portal_ca.issue_server)(await _names(context, sftp))
        # dockerd's --tlscacert: this host's own client CA, so no other host's certificate passes.
        context.client_ca = await asyncio.to_thread(portal_ca.new_client_ca, context.access.name)
        writes[docker.CA] = (context.client_ca.cert.encode(), 0o644, False)
        writes[docker.CERT] = (issued.cert.encode(), 0o644, False)
        writes[docker.KEY] = (issued.key.encode(), 0o600, False)
        context.expect["server_cert"] = issued.cert
        await report(
            "backing up", 30, "issued a server certificate for " + ", ".join(await _names(context, sftp))
        )
    return writes


async def _names(context: _Context, sftp: Any) -> list[str]:
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


async def _keep_kernel_values(context: _Context, conn: Any, keys: list[str]) -> None:
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
    await _db(_save_kernel_values)(context.run_id, context.kernel_before)


def _save_kernel_values(run_id: int, values: dict[str, str]) -> None:
    with transaction.atomic():
        run = ChangeHost.objects.select_for_update().get(pk=run_id)
        run.expect = {**run.expect, "kernel_before": values}
        run.save(update_fields=["expect"])


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


async def _restart(conn: Any, services: list[str], report: Callable[..., Any], *, progress: int) -> None:
    if not services:
        return
    if "docker" in services:
        await ssh.run(conn, "systemctl daemon-reload >/dev/null 2>&1", timeout=60)
    for service in services:
        if service == "sysctl":
            await report("restarting", progress, "applying the kernel parameters")
            path = shlex.quote(sysctl.PATH)
            # Absent after a rollback of a new file: nothing of it left to apply.
            result = await ssh.run(conn, f"if [ -e {path} ]; then sysctl -p {path} 2>&1; fi", timeout=60)
            if result.exit_status != 0:
                raise StepFailed("restarting", f"the kernel refused a parameter: {ssh.output(result)[-500:]}")
            continue
        if service == "docker":
            active = await ssh.run(conn, "systemctl is-active docker", timeout=30)
            if str(active.stdout or "").strip() != "active" and "iptables" in services and len(services) > 1:
                continue  # not running: only the firewall asked for it
        await report("restarting", progress, f"restarting {service}")
        result = await ssh.run(conn, f"systemctl restart {service} 2>&1", timeout=120)
        if result.exit_status != 0:
            raise StepFailed("restarting", f"{service} did not restart: {ssh.output(result)[-500:]}")
        state = await ssh.run(conn, f"systemctl is-active {service}", timeout=30)
        if str(state.stdout or "").strip() != "active":
            raise StepFailed("restarting", f"{service} is not running after the restart")


def port_answers(address: str, port: int, timeout: float = PORT_CHECK_TIMEOUT) -> bool:
    """From outside the host: does the firewall let tcp/``port`` through? A refusal
    (nothing listening) counts as through; only a dropped packet (timeout) does not."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


async def _verify(context: _Context, report: Callable[..., Any]) -> dict[str, Any] | None:
    if context.rotation is not None:
        from hosts.changes import rotation

        return await rotation.verify(context.access, context.rotation, report)
    access = context.access
    new_port = (context.expect.get("ssh_port") or [[None]])[0][0]
    if new_port:
        access = ssh.Access(
            access.name, access.address, int(new_port), access.user, access.private_key, access.host_key
        )
    problem = await ssh.login_works(access)
    if problem:
        raise StepFailed("verifying", f"a new SSH login failed: {problem}")
    await report("verifying", 88, f"a new SSH login on port {access.port} works")
    if context.expect.get("sysctl"):
        await _verify_sysctl(access, dict(context.expect["sysctl"]), report)
    for proto, port in context.expect.get("open", []):
        if proto == "tcp":
            if not await asyncio.to_thread(port_answers, access.address, int(port)):
                raise StepFailed("verifying", f"tcp/{port} is still closed as seen from the portal")
            await report("verifying", 90, f"tcp/{port} is open as seen from the portal")
    for proto, port in context.expect.get("closed", []):
        if proto == "tcp":
            if await asyncio.to_thread(port_answers, access.address, int(port)):
                raise StepFailed("verifying", f"tcp/{port} is still open as seen from the portal")
            await report("verifying", 92, f"tcp/{port} is closed as seen from the portal")
    endpoint = None
    if context.expect.get("docker_tls") and not context.reverting:
        if context.client_ca is None:
            raise StepFailed("verifying", "no client CA was issued for this host in this run")
        endpoint = await asyncio.to_thread(
            _docker_tls_endpoint,
            access.address,
            context.expect["server_cert"],
            context.client_ca,
            access.name,
        )
        await report(
            "verifying", 95, f"Docker answers on {endpoint['docker_url']} to the portal's certificate"
        )
    if context.reverting and context.endpoint_restore is not None:
        endpoint = context.endpoint_restore
    if new_port:
        endpoint = {**(endpoint or {}), "ssh_port": int(new_port)}
    return endpoint


async def _verify_sysctl(access: ssh.Access, wanted: dict[str, str], report: Callable[..., Any]) -> None:
    """The kernel's values now, read back: ``sysctl -p`` exits 0 on some values it did not take."""
    async with ssh.connect(access) as conn:
        result = await ssh.run(conn, "sysctl -n " + " ".join(shlex.quote(k) for k in wanted), timeout=30)
    got = str(result.stdout or "").splitlines()
    wrong = []
    for i, (key, value) in enumerate(wanted.items()):
        now = " ".join(got[i].split()) if i < len(got) else ""
        if now != " ".join(value.split()):
            wrong.append(f"{key} is {now or 'unreadable'}, not {value}")
    if wrong:
        raise StepFailed("verifying", "; ".join(wrong))
    await report("verifying", 89, f"{len(wanted)} kernel parameter(s) read back as set")


def _docker_tls_endpoint(
    address: str, server_cert: str, client_ca: portal_ca.ClientCa, host_name: str
) -> dict[str, Any]:
    """The Host fields for the TLS endpoint, after proving it answers the client certificate
    issued for this host alone (by ``client_ca``, the only client CA its dockerd trusts)."""
    from hosts.fleet import engine

    client = portal_ca.issue_client(client_ca, host_name)
    server_ca = portal_ca.authority().cert
    host = address if ":" not in address else f"[{address}]"
    fields = {
        "docker_url": f"tcp://{host}:{docker.TLS_PORT}",
        "tls_ca": server_ca,
        "tls_fingerprint": portal_ca.fingerprint(server_cert),
        "tls_client_cert": client.cert,
        "tls_client_key": client.key,
        "client_ca_cert": client_ca.cert,
        "client_ca_key": client_ca.key,
        "insecure": False,
    }
    trust = engine.Trust(
        ca=server_ca, client_cert=client.cert, client_key=client.key, fingerprint=fields["tls_fingerprint"]
    )
    last = ""
    until = time.monotonic() + 30
    while time.monotonic() < until:
        try:
            with contextlib.closing(engine.connect(fields["docker_url"], trust, timeout=5)) as sdk:
                sdk.version()
                return fields
        except Exception as exc:  # noqa: BLE001 - every failure is "not yet", reported at the end
            last = engine.describe_error(exc, fields["docker_url"])
        time.sleep(0.5)
    raise StepFailed("verifying", f"Docker did not answer over TLS: {last}")


async def _roll_back(context: _Context, report: Callable[..., Any], reason: str, conn: Any) -> str:
    await report("rolling back", 90, f"{reason}; restoring the original files")
    originals = await _db(_backups)(context.run_id)

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
        problem = await ssh.login_works(context.access)
        if problem:
            raise StepFailed("verifying the rollback", problem)
        await report(
            "rolling back", 98, f"originals restored; a new SSH login on port {context.access.port} works"
        )
    except (StepFailed, ssh.SSHError) as exc:
        await _db(_finish_run)(context.run_id, HostState.FAILED, f"{reason}; the rollback failed too: {exc}")
        return HostState.FAILED
    await _db(_finish_run)(context.run_id, HostState.ROLLED_BACK, f"rolled back: {reason}")
    return HostState.ROLLED_BACK


def _finish_run(run_id: int, state: str, reason: str, *, endpoint: dict[str, Any] | None = None) -> None:
    with transaction.atomic():
        run = ChangeHost.objects.select_for_update().select_related("host", "change").get(pk=run_id)
        run.state, run.reason, run.finished = state, reason, timezone.now()
        run.progress = 100
        run.step = {HostState.APPLIED: "done", HostState.ROLLED_BACK: "rolled back"}.get(state, "failed")
        run.log += f"{timezone.now():%H:%M:%S} {run.get_state_display()}{': ' + reason if reason else ''}\n"
        if endpoint and state == HostState.APPLIED:
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
        rotated = bool(endpoint) and state == HostState.APPLIED and bool(str(run.credentials or ""))
        if rotated:
            run.credentials = ""
        run.save()
    if rotated:
        from hosts.changes import rotation

        rotation.record(run)
    change = run.change
    action = {HostState.APPLIED: "change.applied", HostState.ROLLED_BACK: "change.rollback"}.get(
        state, "change.failed"
    )
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
    if state != HostState.APPLIED:
        events.notify(
            f"{change}: {run.host.name} {run.get_state_display().lower()}: {reason}",
            severity=Event.Severity.ERROR if state == HostState.FAILED else Event.Severity.WARNING,
            obj=change,
            project=change.project_id,
        )
    _publish_run(run)
    _finish_change(change.pk)


def _finish_change(change_id: int) -> None:
    with transaction.atomic():
        change = Change.objects.select_for_update().get(pk=change_id)
        states = set(change.hosts.values_list("state", flat=True))
        busy = {HostState.QUEUED, HostState.APPLYING}
        if states & busy or change.status not in (
            ChangeStatus.APPLYING,
            ChangeStatus.PARTIAL,
            ChangeStatus.FAILED,
        ):
            return
        bad = {HostState.FAILED, HostState.ROLLED_BACK, HostState.INTERRUPTED, HostState.UNREACHABLE}
        if not states & bad:
            change.status = ChangeStatus.APPLIED
        elif HostState.APPLIED in states:
            change.status = ChangeStatus.PARTIAL
        else:
            change.status = ChangeStatus.FAILED
        change.finished_at = timezone.now()
        change.save(update_fields=["status", "finished_at"])
    _publish_change(change)


# ---------------------------------------------------------------- undo


def _revert_inputs(
    change: Change, hosts: list[Host]
) -> list[tuple[ssh.Access, dict[str, tuple[bool, bytes, int]]]]:
    original = change.reverts
    assert original is not None
    inputs = []
    for host in hosts:
        run = ChangeHost.objects.filter(change=original, host=host).first()
        backups = _backups(run.pk) if run else {}
        inputs.append((ssh.Access.of(host), backups))
    return inputs


async def _plan_revert_one(item: tuple[ssh.Access, dict[str, tuple[bool, bytes, int]]]) -> HostPlan:
    access, backups = item
    if not backups:
        return HostPlan(state=HostState.UNCHANGED, reason="the change wrote nothing here")
    try:
        async with ssh.connect(access) as conn, ssh.sftp_client(conn) as sftp:
            current = await ssh.read_files(sftp, list(backups))
            docker_state = await ssh.run(conn, "systemctl is-active docker 2>/dev/null || true", timeout=30)
    except ssh.SSHError as exc:
        return HostPlan(state=HostState.UNREACHABLE, reason=str(exc))
    entries = []
    for path, (existed, data, mode) in backups.items():
        remote = current[path]
        secret = path in SECRET_FILES
        try:
            original_text = data.decode() if existed else None
            entry = _file_entry(remote, original_text) if not secret else None
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
                "before_sha": _sha(remote.data) if remote.exists else "",
                "after_sha": _sha(data) if existed else "",
                "diff": f"--- a{path}\n+++ b{path}\n(contents not shown; restored byte for byte)\n",
                "secret": True,
            }
        if _changed(entry):
            entries.append(entry)
    plan = HostPlan(files=entries)
    plan.restarts = _restarts(entries, docker_running=str(docker_state.stdout or "").strip() == "active")
    if any(e["path"] in TLS_FILES for e in entries) and "docker" not in plan.restarts:
        plan.restarts = [s for s in RESTART_ORDER if s in {*plan.restarts, "docker"}]
    originally_open = set()
    now_open = set()
    if firewall.PATH in backups and backups[firewall.PATH][0]:
        originally_open = firewall.open_ports(backups[firewall.PATH][1].decode())
        if current[firewall.PATH].exists:
            now_open = firewall.open_ports(current[firewall.PATH].data.decode())
    plan.expect = {
        "open": [list(p) for p in sorted(originally_open - now_open)],
        "closed": [list(p) for p in sorted(now_open - originally_open)],
    }
    if sshd.PATH in backups and backups[sshd.PATH][0]:
        port = int(sshd.effective(backups[sshd.PATH][1].decode()).get("Port") or 22)
        if port != access.port:
            plan.expect["ssh_port"] = [[port]]
    if not entries:
        plan.state = HostState.UNCHANGED
    return plan


def profile_change(profile: Profile, user: Any, title: str = "") -> Change:
    """A new change that applies ``profile``'s settings, to be planned on the hosts chosen.

    Raises ChangeError (and creates nothing) when the stored settings break a rule,
    as a profile saved before the rule would."""
    _refuse_stored(profile.settings, f"profile {profile.name}")
    return Change.objects.create(
        project=profile.project,
        title=(title or f"Apply profile {profile.name}")[:200],
        profile=profile,
        settings=profile.settings,
        created_by=user,
    )


def start_revert(original: Change, user: Any) -> Change:
    original = Change.objects.select_related("project").get(pk=original.pk)
    if is_rotation(original):
        raise ChangeError("a credential rotation is not undone: the old credentials are not put back")
    if original.status not in (ChangeStatus.APPLIED, ChangeStatus.PARTIAL, ChangeStatus.FAILED):
        raise ChangeError("only a change that was applied can be reverted")
    hosts = [run.host for run in original.hosts.select_related("host") if run.backups.exists()]
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


# ---------------------------------------------------------------- drift


@dataclass(frozen=True)
class _DriftInput:
    host_id: int
    profile_id: int
    access: ssh.Access
    settings: dict[str, Any]


async def _drift_one(item: _DriftInput) -> tuple[str, str]:
    try:
        async with ssh.connect(item.access) as conn, ssh.sftp_client(conn) as sftp:
            files = await ssh.read_files(sftp, _paths(item.settings))
        entries, _facts = render_host(item.settings, files)
    except ssh.SSHError as exc:
        return DriftState.UNREACHABLE, str(exc)
    except SettingsError as exc:
        return DriftState.ERROR, str(exc)
    diff = "".join(e["diff"] for e in entries if _changed(e))
    return (DriftState.DRIFTED, diff) if diff else (DriftState.IN_SYNC, "")


def check_drift(hosts: Iterable[Host] | None = None) -> list[Drift]:
    """Re-read the managed files of each host that has a profile; flag those that differ."""
    items = []
    wanted = {h.pk for h in hosts} if hosts is not None else None
    for profile in Profile.objects.select_related("project"):
        for host in hosts_of(profile):
            if wanted is None or host.pk in wanted:
                items.append(_DriftInput(host.pk, profile.pk, ssh.Access.of(host), dict(profile.settings)))
    results = asyncio.run(ssh.bounded(items, _drift_one)) if items else []
    rows = []
    for item, (state, diff) in zip(items, results, strict=True):
        previous = Drift.objects.filter(host_id=item.host_id, profile_id=item.profile_id).first()
        row, _ = Drift.objects.update_or_create(
            host_id=item.host_id, profile_id=item.profile_id, defaults={"state": state, "diff": diff}
        )
        rows.append(row)
        if state == DriftState.DRIFTED and (previous is None or previous.state != DriftState.DRIFTED):
            events.notify(
                f"{row.host.name} drifted from profile {row.profile.name}",
                severity=Event.Severity.WARNING,
                obj=row.host,
                project=row.host.project_id,
            )
        live.publish(
            f"project:{row.host.project_id}:drift",
            html=render_to_string("hosts/changes/partials/drift_row.html", {"drift": row}),
        )
    return rows


# ---------------------------------------------------------------- live


def topic(change: Change | int, project_id: int) -> str:
    change_id = change if isinstance(change, int) else change.pk
    return f"project:{project_id}:change:{change_id}"


def _publish_run(run: ChangeHost) -> None:
    live.publish(
        topic(run.change_id, run.change.project_id),
        html=render_to_string("hosts/changes/partials/run_row.html", {"run": run}),
        data={"run": run.pk, "state": run.state, "step": run.step, "progress": run.progress},
    )
    from portal import work_views  # the requester's My work shows the change's progress

    work_views.publish_change(run.change, approvals=False)


def _publish_change(change: Change) -> None:
    live.publish(
        topic(change, change.project_id),
        html=render_to_string(
            "hosts/changes/partials/summary.html",
            {"change": change, "progress": progress(change), "pushed": True},
        ),
        data={"change": change.pk, "status": change.status},
    )
    from portal import work_views  # My work and the approvals queue hear of it too

    work_views.publish_change(change)


def progress(change: Change) -> int:
    values = list(change.hosts.values_list("progress", flat=True))
    return int(sum(values) / len(values)) if values else 0


# ---------------------------------------------------------------- the periodic check


def _drift_pass(shard: Any) -> int:
    sweep_interrupted()
    hosts = [
        h
        for h in Host.objects.filter(Q(profiles__isnull=False) | Q(tags__profiles__isnull=False)).distinct()
        if shard.owns(h.pk)
    ]
    return len(check_drift(hosts)) if hosts else 0


async def watch_drift(shard: Any) -> None:
    """The periodic drift check (hosts.watchers): this shard's hosts, every settings.DRIFT_INTERVAL."""
    while True:
        try:
            checked = await sync_to_async(_drift_pass, thread_sensitive=False)(shard)
            log.info("drift: checked %d host/profile pairs", checked)
        except Exception:
            log.exception("drift check failed")
        await asyncio.sleep(settings.DRIFT_INTERVAL)  # a schedule, not a wait on a condition
