"""The Docker remote API: a systemd drop-in that makes dockerd listen on TCP.

On Photon 4 and 5 docker.service reads no EnvironmentFile (``/etc/default/docker``
is ignored), so the listener is added by a drop-in that resets ``ExecStart=``
and repeats the unit's own command line with ``-H tcp://0.0.0.0:PORT`` and the
TLS options appended. The drop-in is the portal's file; the unit is read, never
written, so a package update of docker.service is followed on the next apply.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from hosts.changes.files import SettingsError

UNIT = "/usr/lib/systemd/system/docker.service"
DROP_IN = "/etc/systemd/system/docker.service.d/10-photon-portal-remote-api.conf"
TLS_DIR = "/etc/docker/portal-tls"
CA = f"{TLS_DIR}/ca.pem"
CERT = f"{TLS_DIR}/server.pem"
KEY = f"{TLS_DIR}/server-key.pem"
TLS_PORT = 2376
PLAIN_PORT = 2375

HEADER = "# Managed by Photon Portal: the Docker remote API. Changes here are overwritten.\n"


def normalize(desired: Mapping[str, Any]) -> dict[str, Any]:
    """``{"enabled": bool, "insecure": bool}``: TLS on 2376, or (flagged) plain 2375."""
    unknown = set(desired) - {"enabled", "insecure"}
    if unknown:
        raise SettingsError(f"unknown Docker remote API settings: {', '.join(sorted(unknown))}")
    return {"enabled": bool(desired.get("enabled")), "insecure": bool(desired.get("insecure"))}


def port(desired: Mapping[str, Any]) -> int | None:
    values = normalize(desired)
    if not values["enabled"]:
        return None
    return PLAIN_PORT if values["insecure"] else TLS_PORT


def unit_exec_start(unit_text: str) -> list[str]:
    """The base unit's ExecStart= command line, without the TCP listeners and TLS
    options we set ourselves (unix and fd listeners are kept)."""
    lines = [m[1] for m in re.finditer(r"^ExecStart=(.*)$", unit_text, flags=re.M) if m[1].strip()]
    if not lines:
        raise SettingsError("docker.service has no ExecStart= line")
    argv = shlex.split(lines[-1])
    result: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        flag, has_value, value = arg.partition("=")
        if flag in _WITH_VALUE:
            if not has_value:
                value = argv[i + 1] if i + 1 < len(argv) else ""
                i += 1
            if flag in ("-H", "--host") and not value.startswith("tcp://"):
                result += [flag, value]
        elif flag not in _TLS_SWITCHES:
            result.append(arg)
        i += 1
    return result


_WITH_VALUE = {"-H", "--host", "--tlscacert", "--tlscert", "--tlskey"}
_TLS_SWITCHES = {"--tls", "--tlsverify"}


def render(current: str, desired: Mapping[str, Any], *, unit_text: str) -> str:
    """The drop-in's new text ("" means: no drop-in, the file is removed)."""
    values = normalize(desired)
    if not values["enabled"]:
        return ""
    argv = unit_exec_start(unit_text)
    if values["insecure"]:
        # --tls=false: dockerd otherwise refuses plain TCP for 15 s, on purpose.
        argv += ["-H", f"tcp://0.0.0.0:{PLAIN_PORT}", "--tls=false"]
        note = "# INSECURE: plain, unauthenticated TCP, accepted by an Admin.\n"
    else:
        argv += [
            "-H",
            f"tcp://0.0.0.0:{TLS_PORT}",
            "--tlsverify",
            f"--tlscacert={CA}",
            f"--tlscert={CERT}",
            f"--tlskey={KEY}",
        ]
        note = ""
    return f"{HEADER}{note}[Service]\nExecStart=\nExecStart={shlex.join(argv)}\n"
