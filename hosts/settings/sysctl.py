"""Kernel parameters: the portal's own file under /etc/sysctl.d, applied with ``sysctl -p``.

A file of its own rather than /etc/sysctl.conf: Photon keeps that one for the
distribution's defaults. Lines the portal does not manage (comments, other keys,
``-`` prefixed ones) are kept; a managed key is set where it already is, or
appended.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from . import SettingsError

PATH = "/etc/sysctl.d/90-photon-portal.conf"
HEADER = "# Kernel parameters managed by Photon Portal: edit the profile, not this file.\n"
MAX_KEYS = 64
_KEY = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$")
_VALUE = re.compile(r"^[\w.:/ -]{1,256}$")
_LINE = re.compile(r"^(\s*-?)([^=#;\s]+)(\s*=\s*)(.*?)\s*$")


def normalize(desired: Mapping[str, Any]) -> dict[str, str]:
    if len(desired) > MAX_KEYS:
        raise SettingsError(f"at most {MAX_KEYS} kernel parameters per profile")
    values: dict[str, str] = {}
    for key, value in desired.items():
        key = str(key).strip()
        if not _KEY.match(key):
            raise SettingsError(f"{key!r} is not a kernel parameter name (like net.ipv4.ip_forward)")
        text = str(value).strip() if not isinstance(value, bool) else str(int(value))
        if not _VALUE.match(text):
            raise SettingsError(f"the value of {key} must be one line of letters, digits and . : / - _")
        values[key] = " ".join(text.split())
    return values


def render(current: str, desired: Mapping[str, Any]) -> str:
    values = normalize(desired)
    if not values:
        return current
    lines = current.splitlines(keepends=True) if current else [HEADER]
    pending = dict(values)
    for i, line in enumerate(lines):
        found = _LINE.match(line.rstrip("\n"))
        if found and found[2] in pending:
            value = pending.pop(found[2])
            if found[4] != value:
                lines[i] = f"{found[1]}{found[2]}{found[3]}{value}\n"
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines += [f"{key} = {value}\n" for key, value in pending.items()]
    return "".join(lines)


def keys_of(text: str) -> list[str]:
    """The keys a sysctl.d file sets (comments and blank lines aside)."""
    return [found[2] for line in text.splitlines() if (found := _LINE.match(line))]


def proc_path(key: str) -> str:
    """Where the kernel shows ``key``."""
    return "/proc/sys/" + key.replace(".", "/")
