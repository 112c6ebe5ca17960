"""/etc/docker/daemon.json: the options the portal manages, every other key kept.

Never ``hosts``: docker.service passes ``-H`` on the command line, and dockerd
refuses to start when both set listeners.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from . import SettingsError

PATH = "/etc/docker/daemon.json"
KEYS = ("log-driver", "log-opts", "registry-mirrors", "insecure-registries", "live-restore")
LOG_DRIVERS = ("json-file", "local", "journald", "syslog", "none", "fluentd", "gelf", "awslogs", "splunk")
_REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?(/\d{1,2})?$")


def normalize(desired: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in desired.items():
        if key == "hosts":
            raise SettingsError("daemon.json must not set hosts: docker.service sets -H on the command line")
        if key not in KEYS:
            raise SettingsError(f"the portal does not manage the daemon.json option {key!r}")
        if value is None or value == "" or value == []:
            continue
        if key == "log-driver":
            if value not in LOG_DRIVERS:
                raise SettingsError(f"log-driver must be one of {', '.join(LOG_DRIVERS)}, not {value!r}")
            values[key] = value
        elif key == "log-opts":
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise SettingsError("log-opts must map option names to text values")
            values[key] = dict(value)
        elif key == "registry-mirrors":
            for url in value:
                if not re.match(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?(/\S*)?$", str(url)):
                    raise SettingsError(f"registry mirror {url!r} is not an http(s) URL")
            values[key] = [str(url) for url in value]
        elif key == "insecure-registries":
            for name in value:
                if not _REGISTRY.match(str(name)):
                    raise SettingsError(f"insecure registry {name!r} is not host[:port] or a CIDR")
            values[key] = [str(name) for name in value]
        elif key == "live-restore":
            if not isinstance(value, bool):
                raise SettingsError("live-restore must be true or false")
            values[key] = value
    return values


def render(current: str, desired: Mapping[str, Any]) -> str:
    values = normalize(desired)
    if not values:
        return current
    try:
        config = json.loads(current) if current.strip() else {}
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{PATH} on the host is not valid JSON ({exc}); fix it by hand first") from None
    if not isinstance(config, dict):
        raise SettingsError(f"{PATH} on the host is not a JSON object; fix it by hand first")
    if all(config.get(key) == value for key, value in values.items()):
        # Already as desired: keep the file byte for byte (its own indentation, key order).
        return current
    config.update(values)
    return json.dumps(config, indent=2) + "\n"
