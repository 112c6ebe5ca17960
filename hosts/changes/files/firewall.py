"""/etc/systemd/scripts/ip4save: Photon's persistent iptables rules.

Ports are opened with ``-A INPUT -p PROTO -m PROTO --dport N -j ACCEPT`` in the
filter table, after the last rule that already accepts a port (Photon's own
tcp/22 line), so they take effect before any later DROP or REJECT a person
added; closing removes exactly such rules for that port. Other tables, chains,
rules and comments are kept. A running firewall is not touched here: the file
is checked with ``iptables-restore --test`` and loaded by restarting
iptables.service.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from hosts.changes.files import SettingsError

PATH = "/etc/systemd/scripts/ip4save"
_PORT = re.compile(r"^(tcp|udp)/(\d{1,5})$")


def parse_port(text: str) -> tuple[str, int]:
    match = _PORT.match(str(text).strip().lower())
    if not match or not 1 <= int(match[2]) <= 65535:
        raise SettingsError(f"{text!r} is not a port: write tcp/8080 or udp/53")
    return match[1], int(match[2])


def normalize(desired: Mapping[str, Any]) -> dict[str, list[tuple[str, int]]]:
    unknown = set(desired) - {"open", "closed"}
    if unknown:
        raise SettingsError(f"unknown firewall settings: {', '.join(sorted(unknown))}")
    opened = [parse_port(p) for p in desired.get("open") or []]
    closed = [parse_port(p) for p in desired.get("closed") or []]
    both = set(opened) & set(closed)
    if both:
        names = ", ".join(f"{proto}/{port}" for proto, port in sorted(both))
        raise SettingsError(f"{names} cannot be both opened and closed")
    return {"open": list(dict.fromkeys(opened)), "closed": list(dict.fromkeys(closed))}


def _accepts(line: str) -> tuple[str, int] | None:
    """The (proto, port) a plain ``-A INPUT ... --dport N -j ACCEPT`` rule opens, else None."""
    tokens = line.split()
    if tokens[:2] != ["-A", "INPUT"] or tokens[-2:] != ["-j", "ACCEPT"]:
        return None
    middle = tokens[2:-2]
    proto = None
    port = None
    i = 0
    while i < len(middle):
        if middle[i] == "-p" and i + 1 < len(middle):
            proto = middle[i + 1]
            i += 2
        elif middle[i] == "-m" and i + 1 < len(middle) and middle[i + 1] == proto:
            i += 2
        elif middle[i] == "--dport" and i + 1 < len(middle) and middle[i + 1].isdigit():
            port = int(middle[i + 1])
            i += 2
        else:
            # Any other match (a source address, an interface) makes it not a plain port rule.
            return None
    if proto in ("tcp", "udp") and port is not None:
        return proto, port
    return None


def accepted_port(line: str) -> tuple[str, int] | None:
    """The port one rule line opens to everyone (as the portal writes them), else None."""
    return _accepts(line.strip())


def open_ports(text: str) -> set[tuple[str, int]]:
    """Ports the filter table accepts from anywhere, as this file sets them."""
    return {port for port in (_accepts(line) for line in _filter_lines(text)) if port}


def _filter_lines(text: str) -> Iterable[str]:
    table = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("*"):
            table = stripped[1:]
        elif table == "filter":
            yield stripped


def render(current: str, desired: Mapping[str, Any]) -> str:
    values = normalize(desired)
    lines = current.splitlines()
    newline_at_end = current.endswith("\n") or not current
    start, commit = _filter_table(lines)
    closed = set(values["closed"])
    kept = [
        line
        for index, line in enumerate(lines)
        if not (start < index < commit and _accepts(line.strip()) in closed)
    ]
    start, commit = _filter_table(kept)
    present = {_accepts(line.strip()) for line in kept[start:commit]}
    missing = [port for port in values["open"] if port not in present]
    if missing:
        accepting = [i for i in range(start, commit) if _accepts(kept[i].strip())]
        at = accepting[-1] + 1 if accepting else _before_trailing_output(kept, start, commit)
        rules = [f"-A INPUT -p {proto} -m {proto} --dport {port} -j ACCEPT" for proto, port in missing]
        kept[at:at] = rules
    text = "\n".join(kept)
    return text + "\n" if newline_at_end else text


def _filter_table(lines: list[str]) -> tuple[int, int]:
    """(index of ``*filter``, index of its ``COMMIT``); raises if the file has none."""
    start = next((i for i, line in enumerate(lines) if line.strip() == "*filter"), None)
    if start is None:
        raise SettingsError(f"{PATH} on the host has no *filter table; fix it by hand first")
    commit = next((i for i in range(start + 1, len(lines)) if lines[i].strip() == "COMMIT"), None)
    if commit is None:
        raise SettingsError(f"{PATH} on the host has no COMMIT for its *filter table")
    return start, commit


def _before_trailing_output(lines: list[str], start: int, commit: int) -> int:
    # Without a port rule to follow: after the last INPUT rule, else just before COMMIT.
    inputs = [i for i in range(start, commit) if lines[i].strip().startswith("-A INPUT")]
    return inputs[-1] + 1 if inputs else commit
