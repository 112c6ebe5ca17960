"""A Compose service as a Docker engine takes it: the body of ``POST /containers/create``.

``hosts.applications.engine_deploy`` deploys applications; this is its pure half (no I/O, no
Django): names and labels as Compose gives them (network ``<project>_<net>``, volume
``<project>_<vol>``, container ``<project>-<service>-<n>``, ``com.docker.compose.*``), so the
Compose CLI on a host recognises what the portal made, and each supported service key turned into
the engine's config. A key the deployer does not honour is refused, never dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hosts.applications import compose
from hosts.applications.compose_rules import DEPLOYED_KEYS
from hosts.applications.placement import parse_memory

COMPOSE_VERSION = "2.24.0"
PROJECT, SERVICE = "com.docker.compose.project", "com.docker.compose.service"
NUMBER, CONFIG_HASH = "com.docker.compose.container-number", "com.docker.compose.config-hash"
APPLICATION = "io.photon-portal.application"
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_NANOS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


@dataclass(frozen=True)
class Plan:
    """One container to make: its engine config, its networks (compose key, engine name, aliases;
    the first is given at create) and the compose keys of the named volumes it mounts."""

    service: str
    replica: int
    host_id: int
    name: str
    config: dict[str, Any]
    networks: list[tuple[str, str, list[str]]]
    volumes: list[str]


# -- a service as the engine takes it ----------------------------------------------------------


def parse_duration(value: str | float) -> int:
    """Nanoseconds from a Compose duration: "5s", "1m30s", "100ms", or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(value * 10**9)
    text = str(value).strip()
    if isinstance(value, bool) or not text or _DURATION.sub("", text):
        raise ValueError(f"duration {value!r}: expected a number and a unit, such as 5s, 1m30s or 100ms")
    return round(sum(float(n) * _NANOS[unit] for n, unit in _DURATION.findall(text)))


def pairs(value: Any, *, bare: str | None) -> dict[str, str]:
    """Environment or labels, list (``K=V``) or mapping form. ``bare``: what a ``K`` alone or a None
    value means (None: left out, as a variable Compose would take from a shell the portal has not)."""
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    else:
        items = [(k, v if sep else None) for k, sep, v in (str(i).partition("=") for i in value or ())]
    found: dict[str, str] = {}
    for key, val in items:
        if val is not None:
            found[key] = str(val).lower() if isinstance(val, bool) else str(val)
        elif bare is not None:
            found[key] = bare
    return found


def _words(value: Any) -> list[str] | None:
    """A command or entrypoint: a string is split as a shell would, without running one."""
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else [str(w) for w in value]


def _port_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    ports = list(range(int(first), int(last or first) + 1))
    if not ports or not all(0 <= p <= 65535 for p in ports):
        raise ValueError(f"port {text!r}: not a port or range of ports")
    return ports


def parse_ports(ports: Any) -> list[tuple[str, str, str]]:
    """``(target/proto, host_ip, published)`` per port; published "" lets the engine choose one."""
    found: list[tuple[str, str, str]] = []
    for item in ports or ():
        if isinstance(item, Mapping):
            target, published = str(item["target"]), str(item.get("published") or "")
            host_ip, proto = str(item.get("host_ip") or ""), str(item.get("protocol") or "tcp")
        else:
            text, _, proto = str(item).partition("/")
            host_ip, proto = "", proto or "tcp"
            if text.startswith("["):  # [::1]:8080:80
                host_ip, _, text = text[1:].partition("]")
            parts = text.lstrip(":").rsplit(":", 2)
            target, published = parts[-1], parts[-2] if len(parts) > 1 else ""
            host_ip = parts[0] if len(parts) == 3 else host_ip
        targets, outside = _port_range(target), _port_range(published) if published else []
        if outside and len(outside) != len(targets):
            raise ValueError(f"port {item!r}: the published and target ranges differ in length")
        found += [
            (f"{p}/{proto}", host_ip, str(outside[i]) if outside else "") for i, p in enumerate(targets)
        ]
    return found


def _mounts(svc: Mapping[str, Any], project: str, declared: Mapping[str, Any]) -> tuple[list[Any], list[str]]:
    """Engine mounts for the service's volumes, and the named volumes (compose keys) they use."""
    mounts: list[dict[str, Any]] = []
    used: list[str] = []
    for item in svc.get("volumes") or ():
        if isinstance(item, str):
            parts = item.split(":")
            spec: dict[str, Any] = (
                {"source": parts[0], "target": parts[1]} if len(parts) > 1 else {"target": item}
            )
            spec["read_only"] = len(parts) > 2 and "ro" in parts[2].split(",")
        else:
            spec = dict(item)
        kind, source, target = spec.get("type", "volume"), str(spec.get("source") or ""), spec["target"]
        if kind == "tmpfs":
            size = (spec.get("tmpfs") or {}).get("size")
            options = {"SizeBytes": parse_memory(size)} if size is not None else {}
            mounts.append({"Type": "tmpfs", "Target": target, "TmpfsOptions": options})
            continue
        if kind != "volume" or source.startswith(("/", ".", "~")):
            raise ValueError(f"volume {item!r}: only named volumes and tmpfs are mounted, not host paths")
        mount = {"Type": "volume", "Target": target, "ReadOnly": bool(spec.get("read_only"))}
        if (spec.get("volume") or {}).get("nocopy"):
            mount["VolumeOptions"] = {"NoCopy": True}
        if source:  # else an anonymous volume, as Compose makes for "/path" alone
            if source not in declared:
                raise ValueError(f"volume {source!r} is not declared under the top-level volumes")
            mount["Source"] = object_name(project, source, declared[source])[0]
            used.append(source)
        mounts.append(mount)
    return mounts, used


def _healthcheck(check: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if check is None or check.get("disable"):
        return None if check is None else {"Test": ["NONE"]}
    test = check.get("test")
    found: dict[str, Any] = {"Test": ["CMD-SHELL", test] if isinstance(test, str) else list(test or [])}
    for key, name in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod")):
        if check.get(key) is not None:
            found[name] = parse_duration(check[key])
    if check.get("retries") is not None:
        found["Retries"] = int(check["retries"])
    return found


def dependencies(service: Mapping[str, Any]) -> dict[str, tuple[str, bool]]:
    """``depends_on`` as ``{service: (condition, restart)}``, whichever form it was written in."""
    given = service.get("depends_on") or {}
    if not isinstance(given, Mapping):
        return {str(name): ("service_started", False) for name in given}
    found = {
        str(n): ((s or {}).get("condition", CONDITIONS[0]), bool((s or {}).get("restart")))
        for n, s in given.items()
    }
    for name, (condition, _) in found.items():
        if condition not in CONDITIONS:
            raise ValueError(f"depends_on {name}: unknown condition {condition!r}")
    return found


def networks_of(service: Mapping[str, Any]) -> dict[str, list[str]]:
    """The compose keys of the service's networks with their aliases (``default`` when none)."""
    given = service.get("networks") or ["default"]
    if not isinstance(given, Mapping):
        return {str(n): [] for n in given}
    return {str(n): [str(a) for a in (spec or {}).get("aliases") or ()] for n, spec in given.items()}


def object_name(project: str, key: str, spec: Mapping[str, Any] | None) -> tuple[str, bool]:
    """A network's or volume's engine name, and whether it is external (never created nor removed)."""
    spec = spec or {}
    external = spec.get("external")
    if isinstance(external, Mapping):  # Compose's older ``external: {name: ...}``
        return str(external.get("name") or spec.get("name") or key), True
    return str(spec.get("name") or (key if external else f"{project}_{key}")), bool(external)


def config_hash(service: Mapping[str, Any]) -> str:
    """sha256 of the service's canonical JSON: a redeploy recreates only the services it changes."""
    return hashlib.sha256(
        json.dumps(service, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def plan(project: str, model: Mapping[str, Any], service: str, replica: int, host_id: int) -> Plan:
    """The engine's config for one replica of ``service`` (ValueError saying what it cannot honour)."""
    svc: Mapping[str, Any] = model["services"][service]
    unknown = sorted(k for k in svc if k not in DEPLOYED_KEYS and not k.startswith("x-"))
    if unknown or not svc.get("image"):
        raise ValueError(
            f"not supported by the portal's deployer: {', '.join(unknown)}" if unknown else "no image"
        )
    declared = model.get("networks") or {}
    nets = networks_of(svc)
    for key in nets:
        if key != "default" and key not in declared:
            raise ValueError(f"network {key!r} is not declared under the top-level networks")
    networks = [(k, object_name(project, k, declared.get(k))[0], [service, *a]) for k, a in nets.items()]
    mounts, volumes = _mounts(svc, project, model.get("volumes") or {})
    ports = parse_ports(svc.get("ports"))
    bindings: dict[str, list[dict[str, str]]] = {}
    for target, host_ip, published in ports:
        bindings.setdefault(target, []).append({"HostIp": host_ip, "HostPort": published})
    exposed = [p if "/" in p else f"{p}/tcp" for p in map(str, svc.get("expose") or ())]
    resources = (svc.get("deploy") or {}).get("resources") or {}
    limits, reservations = resources.get("limits") or {}, resources.get("reservations") or {}
    memory, cpus = limits.get("memory", svc.get("mem_limit")), limits.get("cpus", svc.get("cpus"))
    reserved, stop = reservations.get("memory", svc.get("mem_reservation")), svc.get("stop_grace_period")
    depends = ",".join(f"{n}:{c}:{str(r).lower()}" for n, (c, r) in sorted(dependencies(svc).items()))
    labels = {
        **pairs(svc.get("labels"), bare=""),
        PROJECT: project,
        SERVICE: service,
        NUMBER: str(replica),
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.project.config_files": "",
        "com.docker.compose.version": COMPOSE_VERSION,
        CONFIG_HASH: config_hash(svc),
        "com.docker.compose.depends_on": depends,
        APPLICATION: project,
    }
    first = networks[0][1]
    host = {
        "NetworkMode": first,
        "PortBindings": bindings or None,
        "Mounts": mounts or None,
        "RestartPolicy": _restart(svc.get("restart")),
        "Init": svc.get("init"),
        "Memory": None if memory is None else parse_memory(memory),
        "MemoryReservation": None if reserved is None else parse_memory(reserved),
        "NanoCpus": None if cpus is None else round(float(cpus) * 10**9),
        "ReadonlyRootfs": svc.get("read_only"),
        "CapDrop": svc.get("cap_drop"),
        "SecurityOpt": svc.get("security_opt"),
        "LogConfig": _log_config(svc.get("logging")),
    }
    config = {
        "Image": svc["image"],
        "Cmd": _words(svc.get("command")),
        "Labels": labels,
        "Entrypoint": _words(svc.get("entrypoint")),
        "WorkingDir": svc.get("working_dir"),
        "Env": [f"{k}={v}" for k, v in pairs(svc.get("environment"), bare=None).items()] or None,
        "ExposedPorts": {p: {} for p in [*exposed, *(t for t, _, _ in ports)]} or None,
        "User": None if svc.get("user") is None else str(svc["user"]),
        "Hostname": svc.get("hostname"),
        "Tty": svc.get("tty"),
        "OpenStdin": svc.get("stdin_open"),
        "StopSignal": svc.get("stop_signal"),
        "StopTimeout": None if stop is None else round(parse_duration(stop) / 10**9),
        "Healthcheck": _healthcheck(svc.get("healthcheck")),
        "HostConfig": {k: v for k, v in host.items() if v is not None},
        "NetworkingConfig": {"EndpointsConfig": {first: {"Aliases": networks[0][2]}}},
    }
    name = str(svc.get("container_name") or f"{project}-{service}-{replica}")
    config = {k: v for k, v in config.items() if v is not None}
    return Plan(service, replica, host_id, name, config, networks, volumes)


def _log_config(logging: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Compose's ``logging`` (driver, options) as the engine's LogConfig; None: the engine's default."""
    if not logging:
        return None
    options = {str(k): str(v) for k, v in (logging.get("options") or {}).items()}
    return {"Type": logging.get("driver") or "json-file", "Config": options}


def _restart(policy: str | None) -> dict[str, Any] | None:
    name, _, count = (policy or "no").partition(":")
    return None if name == "no" else {"Name": name, "MaximumRetryCount": int(count or 0)}


def order(model: Mapping[str, Any]) -> list[str]:
    """The services in the order to start them: the catalog's order (dependencies first)."""
    return [str(name) for name in compose.deploy_order(dict(model))]
