"""The portal's own rules for a Compose model, beyond the Compose Specification's schema.

What the portal refuses (keys it cannot honour, keys that would give a container root on the
host), the typed values Compose reads from text, the ports and volumes it must be able to
parse, the ``x-portal`` placement extension, and the services' dependencies. Pure functions
over the model (dicts and lists as YAML gave them, keys always text); each answers
``Finding`` rows with a key path, which ``hosts.applications.compose`` turns into problems
with lines.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any, TypeGuard

#: A key path in the model: mapping keys (text) and list positions.
Path = tuple[str | int, ...]
#: Each service's dependencies (names of services).
Graph = dict[str, list[str]]


@dataclass(frozen=True)
class Finding:
    path: Path
    text: str
    #: Report the value's line rather than the key's (a wrong value rather than a refused key).
    at_value: bool = False
    #: A line known without the model's line map (a duplicate key: the map keeps the last one).
    line: int = 0


ROOT = "gives the container root on the host"
#: The service keys the deployer (hosts.applications.engine_spec) honours; x-* aside, any other is
#: refused when the template is saved: dropping one silently (ulimits, extra_hosts...) would run
#: something other than what was asked.
DEPLOYED_KEYS = frozenset(
    ["image", "command", "entrypoint", "environment", "ports", "volumes", "networks", "depends_on",
     "healthcheck", "restart", "labels", "working_dir", "user", "hostname", "container_name", "expose",
     "stop_grace_period", "stop_signal", "tty", "stdin_open", "mem_limit", "mem_reservation", "cpus",
     "deploy", "read_only", "cap_drop", "security_opt", "init", "logging", "x-portal"]
)  # fmt: skip
SWARM = "swarm-only: the portal runs containers on Docker engines, not swarm services."
NO_FILES = "the portal has no files beside the template"

REFUSED_TOP = {
    "include": "the portal deploys one file; paste the included services into it.",
    "secrets": "the portal keeps no Compose secrets; pass values as ${VARIABLES}, filled in at deploy time.",
    "configs": f"{NO_FILES}; build the configuration into the image, or pass it as ${{VARIABLES}}.",
    "models": "the portal runs containers, not Docker Model Runner models.",
}
REFUSED_SERVICE = {
    "build": "the portal deploys images; build them and push them to a registry first.",
    "env_file": f"{NO_FILES}; put the variables under environment.",
    "label_file": f"{NO_FILES}; put the labels under labels.",
    "extends": "the portal deploys one file; write the service out (anchors and merge keys work).",
    "secrets": REFUSED_TOP["secrets"],
    "configs": REFUSED_TOP["configs"],
    "develop": "is for docker compose watch on a developer's machine; the portal deploys images.",
    "models": REFUSED_TOP["models"],
    "provider": "the portal runs containers, not provider services.",
    "scale": "use deploy.replicas.",
    "links": "is legacy: the services reach each other by name on the application's network.",
    "external_links": "reaches containers outside the application; the portal connects only its own.",
    "volumes_from": "mounts another container's volumes (they may be host paths); share a named volume.",
}
#: Refused whatever their value: a Provisioner deploys templates, and the portal holds root on
#: every host, so a template must not reach past the container.
ROOT_SERVICE = {
    "cap_add": f"{ROOT}: added capabilities reach past the container's confinement.",
    "devices": f"{ROOT}: a host device is the host's own hardware and data.",
    "device_cgroup_rules": f"{ROOT}: it opens the host's devices to the container.",
    "security_opt": f"{ROOT}: it loosens seccomp, AppArmor or SELinux (only no-new-privileges is allowed).",
    "cgroup_parent": f"{ROOT}: it places the container in the host's cgroups.",
    "sysctls": f"{ROOT}: kernel settings reach past the container.",
    "runtime": f"{ROOT}: another runtime may not confine the container.",
    "network_mode": "the portal attaches networks itself (host or container:NAME bypass them); use networks.",
}
#: Refused when their value is ``host``: the container would share that namespace with the host.
HOST_NAMESPACES = ("pid", "ipc", "uts", "cgroup", "userns_mode")
SWARM_DEPLOY = ("mode", "placement", "update_config", "rollback_config", "restart_policy", "endpoint_mode")
X_PORTAL_KEYS = ("host", "tags", "max_per_host", "spread")
SAFE_SECURITY_OPTS = ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true")
HOST_PATH = ("/", ".", "~", "$")
PROTOCOLS = ("tcp", "udp", "sctp")
MISSING_IMAGE = "is missing: the portal deploys images (it does not build them)."


def unknown(value: Any, rendered: bool) -> bool:
    """Whether a value is still a ${VARIABLE} (before render), so it cannot be judged yet."""
    return not rendered and isinstance(value, str) and "$" in value


def services_of(model: dict[str, Any]) -> dict[str, Any]:
    """The services by name (``x-*`` keys under services are extensions, not services)."""
    services = model.get("services")
    if not isinstance(services, dict):
        return {}
    return {name: service for name, service in services.items() if not name.startswith("x-")}


def findings(model: dict[str, Any], rendered: bool) -> list[Finding]:
    """Every rule's findings for a model whose typed values were cast (``cast``)."""
    found = [Finding((key,), reason) for key, reason in REFUSED_TOP.items() if key in model]
    found += _top_volumes(model) + _top_networks(model)
    services = services_of(model)
    if "services" not in model:
        found.append(Finding(("services",), "is missing: an application needs at least one service."))
    elif isinstance(model["services"], dict) and not services:
        found.append(Finding(("services",), "lists no service: an application needs at least one."))
    for name, service in services.items():
        found += _service(model, name, service, rendered)
    found += dependencies(services, rendered)[1]
    return found


def _service(model: dict[str, Any], name: str, service: Any, rendered: bool) -> list[Finding]:
    base: Path = ("services", name)
    if not isinstance(service, dict):
        return []  # the schema says a service is a mapping
    found = [Finding((*base, key), reason) for key, reason in REFUSED_SERVICE.items() if key in service]
    # Keys Compose knows (an unknown one is the schema's to report) that no rule above names.
    named = {*REFUSED_SERVICE, *ROOT_SERVICE, *HOST_NAMESPACES, "privileged", "use_api_socket", "pull_policy"}
    found += [
        Finding((*base, key), "is not one the portal deploys yet; remove it.")
        for key in service
        if key in schema_service_keys() and key not in DEPLOYED_KEYS and key not in named
    ]
    image = service.get("image")
    if service.get("pull_policy") == "build":
        found.append(Finding((*base, "pull_policy"), REFUSED_SERVICE["build"]))
    if "image" not in service:
        found.append(Finding((*base, "image"), MISSING_IMAGE))
    elif isinstance(image, str) and not image.strip():
        found.append(Finding((*base, "image"), "is empty: name the image to deploy.", at_value=True))
    for key, reason in ROOT_SERVICE.items():
        opts = service.get(key)
        if key == "security_opt" and isinstance(opts, list) and all(o in SAFE_SECURITY_OPTS for o in opts):
            continue
        if key in service:
            found.append(Finding((*base, key), reason))
    for key in ("privileged", "use_api_socket"):
        if service.get(key) is True:
            found.append(Finding((*base, key), f"{ROOT}."))
    for key in HOST_NAMESPACES:
        value = service.get(key)
        if isinstance(value, str) and value.strip().lower() == "host":
            found.append(Finding((*base, key), f"{key}: host {ROOT}: it shares the host's namespace."))
        elif key in ("pid", "ipc", "uts") and isinstance(value, str) and value.startswith("container:"):
            text = f"joins a container outside the application, which {ROOT} if that one is privileged"
            found.append(Finding((*base, key), f"{text}; use service:NAME."))
    for hook in ("post_start", "pre_stop"):
        for i, step in enumerate(_list(service.get(hook))):
            if isinstance(step, dict) and step.get("privileged") is True:
                found.append(Finding((*base, hook, i, "privileged"), f"a privileged command {ROOT}."))
    deploy = service.get("deploy")
    replicas = deploy.get("replicas") if isinstance(deploy, dict) else None
    if "container_name" in service and _int(replicas) and replicas > 1:
        found.append(
            Finding(
                (*base, "container_name"),
                f"names one container, but deploy.replicas asks for {replicas}; remove it.",
            )
        )
    found += _deploy(base, deploy, rendered) + _volumes(model, base, service, rendered)
    found += _ports(base, service, rendered) + _networks(model, base, service, rendered)
    found += _x_portal(base, service, replicas, rendered)
    return found


@functools.cache
def schema_service_keys() -> frozenset[str]:
    """The service keys the Compose Specification's schema (next to this module) defines."""
    schema = json.loads(FilePath(__file__).with_name("compose-spec.json").read_text())
    return frozenset(schema["definitions"]["service"]["properties"])


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _deploy(base: Path, deploy: Any, rendered: bool) -> list[Finding]:
    if not isinstance(deploy, dict):
        return []
    found = []
    here = (*base, "deploy")
    replicas = deploy.get("replicas")
    if _int(replicas) and replicas < 0:
        found.append(Finding((*here, "replicas"), "must be 0 or more.", at_value=True))
    for key, value in deploy.items():
        if key.startswith("x-") or key in ("replicas", "labels"):
            continue
        if key in SWARM_DEPLOY:
            found.append(Finding((*here, key), SWARM))
        elif key != "resources":
            found.append(
                Finding((*here, key), "is not honoured: the portal reads replicas, resources, labels.")
            )
        elif isinstance(value, dict):
            found += _resources((*here, key), value, rendered)
    return found


def _resources(here: Path, resources: dict[str, Any], rendered: bool) -> list[Finding]:
    found = []
    for key, value in resources.items():
        if key.startswith("x-"):
            continue
        if key not in ("limits", "reservations"):
            found.append(Finding((*here, key), "is not honoured: the portal sets limits and reservations."))
            continue
        for name, amount in (value or {}).items() if isinstance(value, dict) else ():
            if name.startswith("x-"):
                continue
            if name not in ("cpus", "memory"):
                found.append(Finding((*here, key, name), "is not honoured: only cpus and memory are."))
            elif name == "cpus" and not unknown(amount, rendered) and not _positive(amount):
                found.append(Finding((*here, key, name), "must be a number of CPUs, e.g. 0.5.", True))
    return found


def _positive(value: Any) -> bool:
    try:
        return not isinstance(value, bool) and float(value) > 0
    except (TypeError, ValueError):
        return False


def _named(model: dict[str, Any], top: str, name: str) -> bool:
    declared = model.get(top)
    return isinstance(declared, dict) and name in declared


def _volumes(model: dict[str, Any], base: Path, service: dict[str, Any], rendered: bool) -> list[Finding]:
    found = []
    bind = f"a bind mount {ROOT}; use a named volume."
    for i, volume in enumerate(_list(service.get("volumes"))):
        here = (*base, "volumes", i)
        if isinstance(volume, str):
            parts = volume.split(":")
            source = parts[0] if len(parts) > 1 else ""  # one part: an anonymous volume
            if source.startswith(HOST_PATH):
                found.append(Finding(here, f"mounts {source} from the host: {bind}", at_value=True))
            elif source and not unknown(source, rendered) and not _named(model, "volumes", source):
                found.append(Finding(here, f"uses the volume '{source}', not declared under volumes.", True))
        elif isinstance(volume, dict):
            kind, named = volume.get("type"), volume.get("source")
            if kind == "bind":
                found.append(Finding((*here, "type"), bind))
            elif kind == "npipe":
                found.append(Finding((*here, "type"), f"a named pipe {ROOT}: it reaches the engine itself."))
            elif kind == "cluster":
                found.append(Finding((*here, "type"), SWARM))
            elif kind == "volume" and isinstance(named, str) and named:
                if named.startswith(HOST_PATH):
                    found.append(Finding((*here, "source"), f"is a host path: {bind}", at_value=True))
                elif not unknown(named, rendered) and not _named(model, "volumes", named):
                    found.append(Finding((*here, "source"), "is not declared under volumes.", at_value=True))
    return found


def _top_volumes(model: dict[str, Any]) -> list[Finding]:
    found = []
    volumes = model.get("volumes")
    for name, volume in volumes.items() if isinstance(volumes, dict) else ():
        opts = volume.get("driver_opts") if isinstance(volume, dict) else None
        if not isinstance(opts, dict):
            continue
        options = {o.strip() for o in str(opts.get("o", "")).split(",")}
        device = str(opts.get("device", ""))
        # The local driver mounts what it is told: o=bind (or type none) is a bind mount of a
        # host path, and a device path is the host's disk. "//server/share" is a network share.
        if options & {"bind", "rbind"} or opts.get("type") in ("none", "bind") or re.match(r"/(?!/)", device):
            found.append(Finding(("volumes", name, "driver_opts"), f"mounts a host path or device: {ROOT}."))
    return found


def _top_networks(model: dict[str, Any]) -> list[Finding]:
    networks = model.get("networks")
    return [
        Finding(("networks", name), "is the host's network, which the portal does not attach containers to.")
        for name, network in (networks.items() if isinstance(networks, dict) else ())
        if isinstance(network, dict) and "host" in (network.get("driver"), network.get("name"))
    ]


def _networks(model: dict[str, Any], base: Path, service: dict[str, Any], rendered: bool) -> list[Finding]:
    networks = service.get("networks")
    names = list(networks) if isinstance(networks, dict) else _list(networks)
    return [
        Finding((*base, "networks", i), f"'{name}' is not declared under networks.", at_value=True)
        if isinstance(networks, list)
        else Finding((*base, "networks", name), "is not declared under networks.")
        for i, name in enumerate(names)
        if isinstance(name, str)
        and name != "default"
        and not name.startswith("x-")
        and not unknown(name, rendered)
        and not _named(model, "networks", name)
    ]


def port_problem(port: Any) -> str | None:
    """What is wrong with a port mapping in short syntax ("[IP:][HOST:]CONTAINER[/PROTOCOL]")."""
    if isinstance(port, bool) or not isinstance(port, int | float | str):
        return None  # the schema says what a port may be
    if not isinstance(port, str):
        return None if port == int(port) and 1 <= port <= 65535 else f"{port} is not a port (1 to 65535)."
    spec, _, protocol = port.partition("/")
    if protocol and protocol not in PROTOCOLS:
        return f"'{protocol}' is not a protocol (tcp, udp or sctp)."
    if spec.startswith("["):  # an IPv6 address: [::1]:8080:80
        address, _, spec = spec[1:].partition("]:")
        parts = ["", *spec.split(":")] if spec else []
    else:
        parts = spec.split(":")
        address = ":".join(parts[:-2])
    if len(parts) > 1 and address and not _address(address):
        return f"'{address}' is not an IP address."
    host = parts[-2] if len(parts) > 1 else ""
    if not parts or not _port_range(parts[-1]) or (host and not _port_range(host)):
        return f"'{port}' is not a port mapping: write [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]."
    return None


def _address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _port_range(text: str) -> bool:
    """A port ("80") or a range ("8000-8010")."""
    match = re.fullmatch(r"([0-9]{1,5})(?:-([0-9]{1,5}))?", text)
    if not match:
        return False
    low, high = int(match[1]), int(match[2] or match[1])
    return 1 <= low <= high <= 65535


def _ports(base: Path, service: dict[str, Any], rendered: bool) -> list[Finding]:
    found = []
    for i, port in enumerate(_list(service.get("ports"))):
        here = (*base, "ports", i)
        if not isinstance(port, dict):
            problem = None if unknown(port, rendered) else port_problem(port)
            if problem:
                found.append(Finding(here, problem, at_value=True))
            continue
        target, published = port.get("target"), port.get("published")
        if _int(target) and not 1 <= target <= 65535:
            found.append(Finding((*here, "target"), f"{target} is not a port (1 to 65535).", at_value=True))
        if _int(published) and not 1 <= published <= 65535:
            found.append(Finding((*here, "published"), f"{published} is not a port (1 to 65535).", True))
        elif isinstance(published, str) and not _port_range(published) and not unknown(published, rendered):
            found.append(Finding((*here, "published"), f"'{published}' is not a port or a range.", True))
        if port.get("mode") == "ingress":
            found.append(Finding((*here, "mode"), SWARM))
        protocol = port.get("protocol")
        if isinstance(protocol, str) and protocol not in PROTOCOLS and not unknown(protocol, rendered):
            found.append(Finding((*here, "protocol"), f"'{protocol}' is not tcp, udp or sctp.", True))
        address = port.get("host_ip")
        if isinstance(address, str) and not unknown(address, rendered) and not _address(address):
            found.append(Finding((*here, "host_ip"), f"'{address}' is not an IP address.", at_value=True))
    return found


def _x_portal(base: Path, service: dict[str, Any], replicas: Any, rendered: bool) -> list[Finding]:
    if "x-portal" not in service:
        return []
    here, rules = (*base, "x-portal"), service["x-portal"]
    if not isinstance(rules, dict):
        return [Finding(here, "must be a mapping of host, tags, max_per_host and spread.", at_value=True)]
    found = []
    for key, value in rules.items():
        if key.startswith("x-") or unknown(value, rendered):
            continue
        if key == "host" and not (isinstance(value, str) and value.strip()):
            found.append(Finding((*here, key), "must be a host's name.", at_value=True))
        elif key == "tags" and not (isinstance(value, list) and all(isinstance(t, str) and t for t in value)):
            found.append(Finding((*here, key), "must be a list of tags, e.g. [ssd, edge].", at_value=True))
        elif key == "max_per_host" and not (_int(value) and value >= 1):
            found.append(Finding((*here, key), "must be a whole number, 1 or more.", at_value=True))
        elif key == "spread" and not isinstance(value, bool):
            found.append(Finding((*here, key), "must be true or false.", at_value=True))
        elif key not in X_PORTAL_KEYS:
            found.append(Finding((*here, key), f"is not an x-portal key ({', '.join(X_PORTAL_KEYS)})."))
    if isinstance(rules.get("host"), str) and _int(replicas) and replicas > 1:
        if rules.get("spread") is True:
            found.append(Finding((*here, "spread"), f"cannot spread {replicas} replicas pinned to one host."))
        if _int(rules.get("max_per_host")) and rules["max_per_host"] < replicas:
            found.append(
                Finding((*here, "max_per_host"), f"is less than the {replicas} replicas on one host.")
            )
    return found


def depends_on(service: Any) -> list[tuple[str, Path, bool]]:
    """A service's dependencies: (name, its path under the service, required)."""
    deps = service.get("depends_on") if isinstance(service, dict) else None
    if isinstance(deps, list):
        return [(d, ("depends_on", i), True) for i, d in enumerate(deps) if isinstance(d, str)]
    if isinstance(deps, dict):
        return [
            (d, ("depends_on", d), not (isinstance(v, dict) and v.get("required") is False))
            for d, v in deps.items()
            if not d.startswith("x-")
        ]
    return []


def dependencies(services: dict[str, Any], rendered: bool = True) -> tuple[Graph, list[Finding]]:
    """Each service's dependencies among the services, and findings for unknown ones and a cycle."""
    graph: Graph = {}
    found = []
    for name, service in services.items():
        graph[name] = []
        for dep, path, required in depends_on(service):
            if dep in services:
                graph[name].append(dep)
            elif required and not unknown(dep, rendered):
                found.append(
                    Finding(("services", name, *path), f"'{dep}' is not a service here.", path[-1] != dep)
                )
    cycle = find_cycle(graph)
    if cycle:
        found.append(
            Finding(
                ("services", cycle[0], "depends_on"),
                f"the services depend on each other in a cycle: {' -> '.join(cycle)}; none can start first.",
            )
        )
    return graph, found


def find_cycle(graph: Graph) -> list[str]:
    """A cycle as the names along it, the first repeated at the end; [] when there is none."""
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> list[str]:
        if name in trail:
            return [*trail[trail.index(name) :], name]
        if name in done:
            return []
        for dep in sorted(graph.get(name, ())):
            cycle = visit(dep, [*trail, name])
            if cycle:
                return cycle
        done.add(name)
        return []

    for name in graph:  # in the file's order, so the cycle starts where a person reads it first
        cycle = visit(name, [])
        if cycle:
            return cycle
    return []


def waves(graph: Graph) -> list[list[str]]:
    """The services in waves: each wave's dependencies are all in earlier waves (sorted by name)."""
    placed: set[str] = set()
    result = []
    while len(placed) < len(graph):
        wave = sorted(n for n, deps in graph.items() if n not in placed and all(d in placed for d in deps))
        if not wave:
            raise ValueError("a cycle")  # callers look for cycles first (find_cycle)
        result.append(wave)
        placed.update(wave)
    return result
