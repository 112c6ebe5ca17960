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

from hosts.changes.files import SettingsError

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
#: sshd reads the Banner file as root and sends it to anyone who connects, before any
#: login: only the files made for that (/etc/issue, /etc/issue.net, /etc/issue.*), never
#: another directory, never ``..``.
_BANNER = re.compile(r"^/etc/issue[A-Za-z0-9._-]*$")
#: Directives that are root on the host (they run a command as root, choose which keys
#: or certificates open an account, or let a login set its own environment): never from
#: a profile, whatever the value; the reason is the message.
NEVER = {
    "authorizedkeyscommand": "it runs a program as root on every login attempt",
    "authorizedkeyscommanduser": "it chooses the account that runs AuthorizedKeysCommand",
    "authorizedprincipalscommand": "it runs a program as root on every login attempt",
    "authorizedprincipalscommanduser": "it chooses the account that runs AuthorizedPrincipalsCommand",
    "authorizedkeysfile": "it chooses which file's keys open an account (a file outside the user's home "
    "opens root to whoever can write it)",
    "authorizedprincipalsfile": "it chooses which principals' certificates open an account",
    "trustedusercakeys": "it trusts a certificate authority to open any account, root included",
    "revokedkeys": "it chooses which keys are no longer refused",
    "forcecommand": "it runs a command as the user on every login, the portal's own included",
    "permituserenvironment": "it lets a login set LD_PRELOAD and the like, which runs code as that user",
    "setenv": "it sets environment variables for every session",
    "acceptenv": "it lets clients set environment variables for their session",
    "subsystem": "it runs a program for the sftp (or another) subsystem",
    "chrootdirectory": "it points logins at a directory tree that then decides what runs",
    "hostkey": "it reads a private key file as root",
    "hostcertificate": "it reads a file as root",
    "include": "it reads other files as configuration",
    "match": "a Match block changes settings for some logins and lasts to the end of the file",
    "securitykeyprovider": "it loads a library into sshd as root",
    "pkcs11provider": "it loads a library into sshd as root",
    "xauthlocation": "it names a program sshd runs",
    "pidfile": "it chooses a file sshd writes as root",
    "modulifile": "it reads a file as root",
    "permitemptypasswords": "it lets accounts without a password log in",
}


def _yes_no(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).strip().lower()
    if text not in ("yes", "no"):
        raise SettingsError(f"{key} must be yes or no, not {value!r}", key=key)
    return text


def _integer(key: str, value: Any, low: int, high: int) -> str:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise SettingsError(f"{key} must be a whole number, not {value!r}", key=key) from None
    if not low <= number <= high:
        raise SettingsError(f"{key} must be between {low} and {high}, not {number}", key=key)
    return str(number)


def _names(key: str, value: Any) -> str:
    items = value.split() if isinstance(value, str) else [str(v) for v in value]
    if not items:
        raise SettingsError(f"{key} needs at least one name (leave it unset to allow everyone)", key=key)
    for item in items:
        if not _NAME.match(item):
            raise SettingsError(f"{key}: {item!r} is not a user or group name pattern", key=key)
    return " ".join(items)


def _banner(value: Any) -> str:
    text = str(value).strip()
    if text.lower() == "none":
        return "none"
    if not text.startswith("/"):
        raise SettingsError(f"Banner must be an absolute file path or none, not {value!r}", key="Banner")
    if ".." in text or not _BANNER.match(text):
        raise SettingsError(
            f"Banner {text} is refused: sshd reads it as root and shows it to anyone before login, "
            "so it may only be /etc/issue, /etc/issue.net (an /etc/issue* file) or none",
            key="Banner",
        )
    return text


def normalize(desired: Mapping[str, Any]) -> dict[str, str]:
    """The desired directives as sshd_config values; unknown or invalid ones raise."""
    values: dict[str, str] = {}
    for raw_key, value in desired.items():
        never = NEVER.get(str(raw_key).lower())
        if never:
            raise SettingsError(f"sshd {raw_key} is refused: {never}", key=str(raw_key))
        key = _BY_LOWER.get(str(raw_key).lower())
        if key is None:
            raise SettingsError(f"the portal does not manage the sshd setting {raw_key!r}", key=str(raw_key))
        if value is None or value == "":
            continue
        if any(c in str(value) for c in "\r\n\0#"):
            raise SettingsError(f"{key}: a value cannot hold line breaks or #, as {value!r} does", key=key)
        if key == "Port":
            values[key] = _integer(key, value, 1, 65535)
        elif key == "PermitRootLogin":
            text = str(value).strip().lower()
            if text not in ROOT_LOGIN:
                raise SettingsError(
                    f"PermitRootLogin must be one of {', '.join(ROOT_LOGIN)}, not {value!r}", key=key
                )
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
            values[key] = _banner(value)
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
