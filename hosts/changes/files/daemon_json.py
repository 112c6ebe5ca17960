"""/etc/docker/daemon.json: the options the portal manages, every other key kept.

Never ``hosts``: docker.service passes ``-H`` on the command line, and dockerd
refuses to start when both set listeners.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any

from hosts.changes.files import SettingsError

PATH = "/etc/docker/daemon.json"
KEYS = ("log-driver", "log-opts", "registry-mirrors", "insecure-registries", "live-restore")
LOG_DRIVERS = ("json-file", "local", "journald", "syslog", "none", "fluentd", "gelf", "awslogs", "splunk")
_REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$")
#: The widest network an insecure-registries CIDR may cover. Docker then pulls from any
#: registry whose address falls inside without checking TLS, so whoever sits on the path
#: chooses the images the host runs (as root, for privileged containers): a /8 of IPv4 is
#: already a whole private range; an IPv6 /16 likewise the widest sane site range.
MIN_PREFIX = {4: 8, 6: 16}
#: daemon.json options that are root on the host: never from a profile, whatever the
#: value (only KEYS are managed at all; these get their reason instead of "not managed").
NEVER = {
    "tls": "it changes whether the engine's API checks TLS",
    "tlsverify": "it changes whether the engine's API checks client certificates",
    "tlscacert": "it chooses which certificates open the engine's API",
    "tlscert": "it replaces the engine's server certificate",
    "tlskey": "it replaces the engine's server key",
    "authorization-plugins": "it changes who may use the engine",
    "data-root": "it moves the engine's root-owned state to another directory",
    "exec-root": "it moves the engine's root-owned sockets and state",
    "runtimes": "it names programs the engine runs as root",
    "default-runtime": "it chooses the program the engine runs containers with",
    "userns-remap": "it changes how container root maps to host users",
    "seccomp-profile": "it reads a file as root and can switch container confinement off",
}


def _insecure_registry(name: str) -> str:
    if "/" not in name:
        if not _REGISTRY.match(name):
            raise SettingsError(
                f"insecure registry {name!r} is not host[:port] or a CIDR", key="insecure-registries"
            )
        return name
    try:
        network = ipaddress.ip_network(name, strict=False)
    except ValueError:
        raise SettingsError(
            f"insecure registry {name!r} is not host[:port] or a CIDR", key="insecure-registries"
        ) from None
    widest = MIN_PREFIX[network.version]
    if network.prefixlen < widest:
        raise SettingsError(
            f"insecure registry {name} is refused: Docker would pull from every registry in it without "
            f"checking TLS, so anyone on the way could choose what runs on the host; give one registry "
            f"or a network of /{widest} or narrower",
            key="insecure-registries",
        )
    return name


def normalize(desired: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in desired.items():
        if key == "hosts":
            raise SettingsError(
                "daemon.json must not set hosts: docker.service sets -H on the command line, and a "
                "tcp:// listener without tlsverify is root for anyone who reaches it",
                key=key,
            )
        if key in NEVER:
            raise SettingsError(f"daemon.json {key} is refused: {NEVER[key]}", key=key)
        if key not in KEYS:
            raise SettingsError(f"the portal does not manage the daemon.json option {key!r}", key=key)
        if value is None or value == "" or value == []:
            continue
        if key == "log-driver":
            if value not in LOG_DRIVERS:
                raise SettingsError(
                    f"log-driver must be one of {', '.join(LOG_DRIVERS)}, not {value!r}", key=key
                )
            values[key] = value
        elif key == "log-opts":
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise SettingsError("log-opts must map option names to text values", key=key)
            values[key] = dict(value)
        elif key == "registry-mirrors":
            for url in value:
                if not re.match(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?(/\S*)?$", str(url)):
                    raise SettingsError(f"registry mirror {url!r} is not an http(s) URL", key=key)
            values[key] = [str(url) for url in value]
        elif key == "insecure-registries":
            if isinstance(value, str):
                raise SettingsError("insecure-registries must be a list", key=key)
            values[key] = [_insecure_registry(str(name)) for name in value]
        elif key == "live-restore":
            if not isinstance(value, bool):
                raise SettingsError("live-restore must be true or false", key=key)
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


def reload_problems(config_text: str, info: Mapping[str, Any]) -> list[str]:
    """Where dockerd (``docker info``) differs from the options of ``config_text`` that the
    portal manages and a reload applies (empty: it took them). After a SIGHUP dockerd keeps
    its old settings, and keeps running, when it refuses the new ones: this is how that shows."""
    try:
        config = json.loads(config_text) if config_text.strip() else {}
    except json.JSONDecodeError:
        return [f"{PATH} on the host is not valid JSON"]
    if not isinstance(config, dict):
        return [f"{PATH} on the host is not a JSON object"]
    problems = []
    if "live-restore" in config and bool(info.get("LiveRestoreEnabled")) != bool(config["live-restore"]):
        problems.append(
            f"live-restore is {bool(info.get('LiveRestoreEnabled'))}, not {config['live-restore']}"
        )
    registry = info.get("RegistryConfig") or {}
    if "registry-mirrors" in config:
        got = [str(m).rstrip("/") for m in registry.get("Mirrors") or []]
        wanted = [str(m).rstrip("/") for m in config["registry-mirrors"] or []]
        if got != wanted:
            problems.append(f"registry-mirrors are {got}, not {wanted}")
    if "insecure-registries" in config:
        cidrs = {_network(c) for c in registry.get("InsecureRegistryCIDRs") or []}
        insecure = {
            n for n, index in (registry.get("IndexConfigs") or {}).items() if not index.get("Secure", True)
        }
        missing = [
            name
            for name in config["insecure-registries"] or []
            if (_network(name) not in cidrs if "/" in str(name) else name not in insecure)
        ]
        if missing:
            problems.append(f"insecure-registries {', '.join(map(str, missing))} not taken")
    return problems


def _network(text: Any) -> str:
    try:
        return str(ipaddress.ip_network(str(text), strict=False))
    except ValueError:
        return str(text)
