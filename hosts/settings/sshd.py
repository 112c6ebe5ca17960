"""/etc/ssh/sshd_config: the directives the portal manages, the rest kept as is.

sshd uses the first value it reads for a keyword, and a ``Match`` block lasts
to the end of the file (or the next Match), so managed directives live in the
global section: before the first ``Match`` and before any ``Include`` (an
included file read first would win). A directive the file already sets there
is changed in place; a new one goes right after its commented default
(``#Port 22``) when there is one, where a person reading the file expects it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from . import SettingsError

PATH = "/etc/ssh/sshd_config"

#: Keyword (sshd's spelling) -> how its value is checked.
KEYWORDS = (
    "Port",
    "PermitRootLogin",
    "PasswordAuthentication",
    "PubkeyAuthentication",
    "AllowUsers",
    "AllowGroups",
    "ClientAliveInterval",
    "MaxAuthTries",
    "Banner",
)
_BY_LOWER = {k.lower(): k for k in KEYWORDS}
ROOT_LOGIN = ("yes", "no", "prohibit-password", "without-password", "forced-commands-only")
_NAME = re.compile(r"^[A-Za-z0-9._*?@%!\[\]-]+$")
_PATH = re.compile(r"^(none|/[A-Za-z0-9._/+-]+)$")


def _yes_no(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).strip().lower()
    if text not in ("yes", "no"):
        raise SettingsError(f"{key} must be yes or no, not {value!r}")
    return text


def _integer(key: str, value: Any, low: int, high: int) -> str:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise SettingsError(f"{key} must be a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise SettingsError(f"{key} must be between {low} and {high}, not {number}")
    return str(number)


def _names(key: str, value: Any) -> str:
    items = value.split() if isinstance(value, str) else [str(v) for v in value]
    if not items:
        raise SettingsError(f"{key} needs at least one name (leave it unset to allow everyone)")
    for item in items:
        if not _NAME.match(item):
            raise SettingsError(f"{key}: {item!r} is not a user or group name pattern")
    return " ".join(items)


def normalize(desired: Mapping[str, Any]) -> dict[str, str]:
    """The desired directives as sshd_config values; unknown or invalid ones raise."""
    values: dict[str, str] = {}
    for raw_key, value in desired.items():
        key = _BY_LOWER.get(str(raw_key).lower())
        if key is None:
            raise SettingsError(f"the portal does not manage the sshd setting {raw_key!r}")
        if value is None or value == "":
            continue
        if any(c in str(value) for c in "\r\n\0#"):
            raise SettingsError(f"{key}: a value cannot hold line breaks or #, as {value!r} does")
        if key == "Port":
            values[key] = _integer(key, value, 1, 65535)
        elif key == "PermitRootLogin":
            text = str(value).strip().lower()
            if text not in ROOT_LOGIN:
                raise SettingsError(f"PermitRootLogin must be one of {', '.join(ROOT_LOGIN)}, not {value!r}")
            values[key] = text
        elif key in ("PasswordAuthentication", "PubkeyAuthentication"):
            values[key] = _yes_no(key, value)
        elif key in ("AllowUsers", "AllowGroups"):
            values[key] = _names(key, value)
        elif key == "ClientAliveInterval":
            values[key] = _integer(key, value, 0, 86400)
        elif key == "MaxAuthTries":
            values[key] = _integer(key, value, 1, 100)
        elif key == "Banner":
            text = str(value).strip()
            if not _PATH.match(text):
                raise SettingsError(f"Banner must be an absolute file path or none, not {value!r}")
            values[key] = text
    return values


def _keyword(line: str) -> str:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return ""
    return re.split(r"[\s=]+", stripped, maxsplit=1)[0].lower()


def _commented_keyword(line: str) -> str:
    match = re.match(r"^\s*#\s*([A-Za-z]+)[\s=]", line)
    return match[1].lower() if match else ""


def global_end(lines: list[str]) -> int:
    """Index of the first line that is no longer global (the first Match), or len(lines)."""
    return next((i for i, line in enumerate(lines) if _keyword(line) == "match"), len(lines))


def effective(text: str) -> dict[str, str]:
    """The global values of the managed keywords as this file sets them (first wins)."""
    lines = text.splitlines()
    found: dict[str, str] = {}
    for line in lines[: global_end(lines)]:
        key = _BY_LOWER.get(_keyword(line))
        if key and key not in found:
            parts = re.split(r"[\s=]+", line.strip(), maxsplit=1)
            found[key] = parts[1].strip() if len(parts) > 1 else ""
    return found


def render(current: str, desired: Mapping[str, Any]) -> str:
    values = normalize(desired)
    newline_at_end = current.endswith("\n") or not current
    lines = current.splitlines()
    for key, value in values.items():
        lines = _set(lines, key, value)
    text = "\n".join(lines)
    return text + "\n" if newline_at_end else text


def _set(lines: list[str], key: str, value: str) -> list[str]:
    lower = key.lower()
    new_line = f"{key} {value}"
    end = global_end(lines)
    include = next((i for i, line in enumerate(lines[:end]) if _keyword(line) == "include"), end)
    # Where it may stay: set before any Include. After one, it moves up (an included file would win).
    positions = [i for i, line in enumerate(lines[:end]) if _keyword(line) == lower]
    kept = positions[0] if positions and positions[0] < include else None
    result = list(lines)
    if kept is not None:
        result[kept] = new_line
    # Later duplicates in the global section would be ignored by sshd but mislead a reader.
    for index in sorted((p for p in positions if p != kept), reverse=True):
        del result[index]
    if kept is not None:
        return result
    end = global_end(result)
    include = next((i for i, line in enumerate(result[:end]) if _keyword(line) == "include"), end)
    commented = [i for i, line in enumerate(result[:include]) if _commented_keyword(line) == lower]
    if commented:
        at = commented[-1] + 1
    elif include < end:
        at = include
    elif end < len(result):
        # Right after the last global line, above the comments and blank lines
        # that introduce the Match block.
        at = end
        while at > 0 and result[at - 1].strip().startswith("#"):
            at -= 1
        while at > 0 and not result[at - 1].strip():
            at -= 1
    else:
        at = len(result)
    result.insert(at, new_line)
    return result
