"""Rendering one host's files for desired settings, the diff, and the lock-out guard.

Pure: nothing here touches a host."""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hosts import ssh
from hosts.changes import reloads
from hosts.changes.desired import RESTART_ORDER, SERVICE, firewall_desired
from hosts.changes.files import SettingsError, daemon_json, docker, firewall, sshd, sysctl
from hosts.models.changes import (
    ChangeRun,
    RunState,
)


@dataclass
class Checks:
    """What verifying a run checks from the portal's side (a ChangeRun's ``expect_*``,
    ``docker_tls`` and ``rotate_docker`` fields)."""

    #: Ports the firewall must let through, and drop: [[proto, port]].
    open: list[list[Any]] = field(default_factory=list)
    closed: list[list[Any]] = field(default_factory=list)
    #: The port a new SSH login must work on, when the change moves it.
    ssh_port: int | None = None
    #: Kernel parameters to read back as set.
    sysctl: dict[str, str] = field(default_factory=dict)
    docker_tls: bool = False
    rotate_docker: bool = False

    @classmethod
    def of(cls, run: ChangeRun) -> Checks:
        return cls(
            open=list(run.expect_open),
            closed=list(run.expect_closed),
            ssh_port=run.expect_ssh_port,
            sysctl=dict(run.expect_sysctl),
            docker_tls=run.docker_tls,
            rotate_docker=run.rotate_docker,
        )

    def fields(self) -> dict[str, Any]:
        """The ChangeRun fields that keep these checks."""
        return {
            "expect_open": self.open,
            "expect_closed": self.closed,
            "expect_ssh_port": self.ssh_port,
            "expect_sysctl": self.sysctl,
            "docker_tls": self.docker_tls,
            "rotate_docker": self.rotate_docker,
        }


@dataclass
class HostPlan:
    state: str = RunState.PLANNED
    reason: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)
    checks: Checks = field(default_factory=Checks)
    #: A rotation's new keys (JSON), kept encrypted on the run until applied.
    credentials: str = field(default="", repr=False)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_text(remote: ssh.RemoteFile) -> str:
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


def file_entry(remote: ssh.RemoteFile, after: str | None) -> dict[str, Any]:
    """One file of a plan; ``after`` None means: the file is removed."""
    before = file_text(remote) if remote.exists else ""
    new = "" if after is None else after
    return {
        "path": remote.path,
        "existed": remote.exists,
        "mode": remote.mode if remote.exists else (0o600 if remote.path == sshd.PATH else 0o644),
        "before": before,
        "after": new,
        "remove": after is None,
        "before_sha": sha(remote.data) if remote.exists else "",
        "after_sha": "" if after is None else sha(new.encode()),
        "diff": unified_diff(remote.path, before, new),
    }


def changed(entry: Mapping[str, Any]) -> bool:
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
        entries.append(file_entry(remote, sshd.render(file_text(remote), settings["sshd"] or {})))
    if "daemon_json" in settings:
        remote = files[daemon_json.PATH]
        current = file_text(remote) if remote.exists else ""
        rendered = daemon_json.render(current, settings["daemon_json"] or {})
        if rendered != current or remote.exists:
            entries.append(file_entry(remote, rendered))
    if "docker_api" in settings:
        remote = files[docker.DROP_IN]
        unit = file_text(files[docker.UNIT])
        rendered = docker.render(
            file_text(remote) if remote.exists else "", settings["docker_api"] or {}, unit_text=unit
        )
        entries.append(file_entry(remote, rendered or None))
    if "sysctl" in settings:
        remote = files[sysctl.PATH]
        entries.append(
            file_entry(remote, sysctl.render(file_text(remote) if remote.exists else "", settings["sysctl"]))
        )
    wanted_firewall = firewall_desired(settings)
    ip4save = file_text(files[firewall.PATH])
    if wanted_firewall is not None:
        rendered = firewall.render(ip4save, wanted_firewall)
        entries.append(file_entry(files[firewall.PATH], rendered))
        ip4save = rendered
        facts["firewall"] = firewall.normalize(wanted_firewall)
    facts["open_ports"] = firewall.open_ports(ip4save)
    sshd_text = next((e["after"] for e in entries if e["path"] == sshd.PATH), None)
    if sshd_text is None and files.get(sshd.PATH) is not None and files[sshd.PATH].exists:
        sshd_text = file_text(files[sshd.PATH])
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


def restarts_for(entries: Iterable[Mapping[str, Any]], *, docker_running: bool) -> list[str]:
    """One entry per service the changed files touch, in restart order: the service's name
    when it restarts, ``"reload <service>"`` when a reload takes every change (see reloads)."""
    restart: dict[str, bool] = {}
    for entry in entries:
        if changed(entry) and entry["path"] in SERVICE:
            service = SERVICE[entry["path"]]
            restart[service] = restart.get(service, False) or _needs_restart(entry, docker_running)
    if "iptables" in restart and docker_running:
        restart["docker"] = True  # restarting iptables flushes Docker's chains
    return [s if restart[s] else reloads.reload_entry(s) for s in RESTART_ORDER if s in restart]


def _needs_restart(entry: Mapping[str, Any], docker_running: bool) -> bool:
    path = entry["path"]
    if SERVICE[path] not in reloads.RELOADABLE_SERVICES or entry["remove"] or entry.get("secret"):
        return True
    if path == sshd.PATH:
        return not entry["existed"] or bool(reloads.sshd_restart_keys(entry["before"], entry["after"]))
    if path == daemon_json.PATH:
        # A stopped dockerd has nothing to reload: the restart starts it, as before.
        return not docker_running or bool(reloads.daemon_json_restart_keys(entry["before"], entry["after"]))
    return True  # docker's unit drop-in: a new command line


def with_restart(entries: Iterable[str], service: str) -> list[str]:
    """``entries`` with ``service`` restarted (a reload of it, if any, becomes the restart)."""
    wanted = {reloads.service_of(e) for e in entries} | {service}
    kept = {reloads.service_of(e): e for e in entries if reloads.service_of(e) != service}
    return [kept.get(s, s) for s in RESTART_ORDER if s in wanted]


def managed_paths(settings: Mapping[str, Any]) -> list[str]:
    """The files these settings write, in ``render_host``'s order: those a plan leaves out of
    its files are already as wanted on the host."""
    wanted = {
        sshd.PATH: "sshd" in settings,
        daemon_json.PATH: "daemon_json" in settings,
        docker.DROP_IN: "docker_api" in settings,
        sysctl.PATH: "sysctl" in settings,
        firewall.PATH: firewall_desired(settings) is not None,
    }
    return [path for path, managed in wanted.items() if managed]


def paths_for(settings: Mapping[str, Any]) -> list[str]:
    """The files to read for these settings (sshd's and the firewall's always: the lock-out guard)."""
    paths = [sshd.PATH, firewall.PATH]
    if "daemon_json" in settings:
        paths.append(daemon_json.PATH)
    if "docker_api" in settings:
        paths += [docker.DROP_IN, docker.UNIT]
    if "sysctl" in settings:
        paths.append(sysctl.PATH)
    return paths
