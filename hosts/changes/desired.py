"""A profile's desired settings: where each section lives on a host, what restarts it,
the one check every way in goes through, and the hosts a profile applies to."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.db.models import Q

from hosts.changes.errors import ChangeError, Problem
from hosts.changes.files import SettingsError, daemon_json, docker, firewall, sshd, sysctl
from hosts.models import Host
from hosts.models.changes import (
    Change,
    Profile,
)

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


TLS_FILES = (docker.CA, docker.CERT, docker.KEY)
SECRET_FILES = {docker.KEY}


#: The settings key of a credential rotation (hosts.changes.rotation), a change without a profile.
ROTATE = "rotate_credentials"


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


def refuse_stored(settings: Any, what: str) -> None:
    """Settings stored before a rule existed are checked again before SSH is touched."""
    problems = settings_problems(settings)
    if problems:
        raise ChangeError(f"{what} is refused: " + "; ".join(p.message for p in problems), problems)


def firewall_desired(settings: Mapping[str, Any]) -> dict[str, list[str]] | None:
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
