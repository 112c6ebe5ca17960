"""Deploy a Compose application across Docker engines: ``docker compose up -d`` over several hosts.

The caller gives the parsed, interpolated Compose ``model``, a placement (service, replica, host
id) per container, and an open docker SDK client per host. Objects get Compose's names and labels
(network ``<project>_<net>``, volume ``<project>_<vol>``, container ``<project>-<service>-<n>``),
so ``docker compose -p <project> ps`` on a host lists what landed there. A host gets only the
networks and volumes its own containers use: a bridge network cannot span engines.

Every service is translated and every missing image pulled (hosts in parallel) before anything is
created; then services start in dependency order, waiting on ``service_healthy`` and
``service_completed_successfully``. The first failure stops the deploy with ``DeployFailed``, which
carries what was created so the caller can offer ``roll_back``. A container of the project already
there under its name is kept when its ``config-hash`` label is unchanged, else recreated.
No Django here; ``say`` receives the progress, always on the caller's thread. What a service becomes
on an engine (config, names, labels) is ``hosts.applications.engine_spec``.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import docker.utils

from hosts.applications import engine_spec as spec
from hosts.applications.engine_spec import CONFIG_HASH, NUMBER, PROJECT, SERVICE, Plan, order
from hosts.fleet.engine import describe_error

STEPS = ("Pulling", "Layer", "Network", "Volume", "Creating", "Starting", "Waiting", "Healthy", "Done",
         "Failed", "Rolling back", "Removed")  # fmt: skip
_NOT_FOUND = ("manifest unknown", "not found", "pull access denied", "repository does not exist")
_POLL = 0.25  # seconds between looks at a container being waited for


@dataclass(frozen=True)
class Progress:
    """One line of a deploy's progress; ``step`` is one of ``STEPS``, ``level`` info, warning or error."""

    service: str  # "" for a network or volume
    host_id: int
    step: str
    message: str
    level: str = "info"


Clients = Mapping[int, docker.DockerClient]
Say = Callable[[Progress], None]
Login = Callable[[int, str], "dict[str, str] | None"]


@dataclass(frozen=True)
class CreatedObject:
    """A network, volume or container made by a deploy (``ref``: the engine's id, a volume's name)."""

    kind: str  # "network", "volume" or "container"
    host_id: int
    name: str
    ref: str
    service: str = ""


@dataclass
class Created:
    """Everything a deploy created, in creation order: what ``roll_back`` removes."""

    objects: list[CreatedObject] = field(default_factory=list)

    def of(self, kind: str) -> list[CreatedObject]:
        return [o for o in self.objects if o.kind == kind]

    @property
    def networks(self) -> list[CreatedObject]:
        return self.of("network")

    @property
    def volumes(self) -> list[CreatedObject]:
        return self.of("volume")

    @property
    def containers(self) -> list[CreatedObject]:
        return self.of("container")


class DeployFailed(Exception):
    """The deploy stopped: ``message`` says which service on which host and why."""

    def __init__(self, message: str, created: Created) -> None:
        super().__init__(message)
        self.message, self.created = message, created


@dataclass(frozen=True)
class ContainerState:
    """One container of an application as its engine reports it (``health`` "" without a check)."""

    host_id: int
    service: str
    replica: int
    container_id: str
    name: str
    state: str
    health: str
    ports: tuple[str, ...]  # "host_ip:port->target/proto"


# -- deploying ---------------------------------------------------------------------------------


def explain(exc: BaseException, image: str = "") -> str:
    """An engine's error in the words people expect: image not found, port already allocated..."""
    text = describe_error(exc)
    lowered = text.lower()
    if "port is already allocated" in lowered or "address already in use" in lowered:
        return f"a published port is already allocated on this host ({text})"
    if image and any(s in lowered for s in ("unauthorized", "authentication required", "no basic auth")):
        return f"the registry refused to let this host pull {image} without a login ({text})"
    if image and (isinstance(exc, docker.errors.ImageNotFound) or any(s in lowered for s in _NOT_FOUND)):
        return f"image {image} not found ({text})"
    return f"cannot pull image {image} ({text})" if image else text


def _has_image(sdk: Any, image: str) -> bool:
    try:
        sdk.api.inspect_image(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def _pull(sdk: Any, image: str, auth: Any, emit: Callable[[str, str], None], stop: threading.Event) -> None:
    repository, tag = docker.utils.parse_repository_tag(image)
    emit("Pulling", f"pulling {image}")
    seen: dict[str, str] = {}
    for event in sdk.api.pull(repository, tag=tag or "latest", stream=True, decode=True, auth_config=auth):
        if "error" in event:
            raise docker.errors.APIError(event["error"])
        if stop.is_set():  # another host failed: the deploy is over
            return
        layer, status = event.get("id"), event.get("status")
        if layer and status and seen.get(layer) != status:  # a line per layer and stage, not per byte
            seen[layer] = status
            emit("Layer", f"{layer}: {status}")
    emit("Pulling", f"pulled {image}")


def _not_ready(state: Mapping[str, Any], healthy: bool) -> str:
    """Why a container waited for can never satisfy its condition ("" while it still may)."""
    health, code = state.get("Health") or {}, state.get("ExitCode")
    exited = state.get("Status") in ("exited", "dead")
    if healthy and not health:
        return "it has no healthcheck"
    if healthy and health.get("Status") == "unhealthy":
        output = str(((health.get("Log") or [{}])[-1]).get("Output", "")).strip()
        return f"it is unhealthy ({output or 'its check failed'})"
    if exited and (healthy or code or state.get("Status") == "dead"):
        return f"it exited with code {code}"
    return ""


class _Run:
    """One deploy: where it reports, what it made, where it is (``at``), and how it fails."""

    def __init__(self, project: str, clients: Clients, say: Say, refresh: bool = False) -> None:
        self.project, self.clients, self.say, self.created = project, clients, say, Created()
        self.at: tuple[str, int] = ("", 0)
        #: An update: every image pulled again, and a container on an older image of its tag recreated.
        self.refresh = refresh

    def tell(self, service: str, host_id: int, step: str, message: str) -> None:
        self.at = (service, host_id)
        self.say(Progress(service, host_id, step, message))

    def fail(self, service: str, host_id: int, why: str) -> DeployFailed:
        where = (
            f"{service} on host {host_id}" if service else f"host {host_id}" if host_id else "the application"
        )
        self.say(Progress(service, host_id, "Failed", f"{where}: {why}", "error"))
        return DeployFailed(f"{where}: {why}", self.created)

    def pull(self, plans: Sequence[Plan], login: Login) -> None:
        """Pull what each host lacks, a thread per host, relaying progress to the caller's thread."""
        jobs: dict[int, dict[str, tuple[str, Any, bool]]] = {}
        for one in plans:
            wanted, image = jobs.setdefault(one.host_id, {}), one.config["Image"]
            if image in wanted:
                continue
            present = _has_image(self.clients[one.host_id], image)
            if self.refresh or not present:
                # Asked here, on the caller's thread: a login may read the caller's database.
                wanted[image] = (one.service, login(one.host_id, image), present)
        jobs = {host_id: images for host_id, images in jobs.items() if images}
        events: queue.Queue[Progress] = queue.Queue()
        stop, failures = threading.Event(), list[tuple[str, int, str]]()

        def pull_host(host_id: int) -> None:
            for image, (service, auth, present) in jobs[host_id].items():

                def emit(step: str, message: str, service: str = service, level: str = "info") -> None:
                    events.put(Progress(service, host_id, step, message, level))

                if stop.is_set():
                    return
                try:
                    _pull(self.clients[host_id], image, auth, emit, stop)
                except Exception as exc:  # noqa: BLE001 - any failure stops the deploy, told in words
                    if present:  # an update that found no newer image keeps the host's, as Compose's pull
                        emit(
                            "Pulling",
                            f"no newer {image}: {explain(exc, image)}; keeping the host's",
                            "warning",
                        )
                        continue
                    failures.append((service, host_id, explain(exc, image)))
                    stop.set()

        with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
            try:
                futures = [pool.submit(pull_host, host_id) for host_id in jobs]
                while not all(f.done() for f in futures) or not events.empty():
                    with contextlib.suppress(queue.Empty):
                        self.say(events.get(timeout=0.1))
            finally:
                stop.set()  # a caller's say that raised must not leave pulls running
        if failures:
            raise self.fail(*failures[0])

    def ensure(self, kind: str, host_id: int, key: str, declared: Mapping[str, Any] | None) -> None:
        """Create a network or volume on one host unless it is there (then it is used as it is)."""
        api, step, given = self.clients[host_id].api, kind.capitalize(), dict(declared or {})
        name, external = spec.object_name(self.project, key, given)
        self.at = ("", host_id)
        # Both list filters match parts of names too, hence the exact comparison.
        if kind == "network":
            found = api.networks(names=[name])
        else:
            found = api.volumes(filters={"name": name}).get("Volumes")
        if any(o["Name"] == name for o in found or ()):
            return self.tell("", host_id, step, f"{kind} {name} exists: used as it is")
        if external:
            raise self.fail("", host_id, f"external {kind} {name} does not exist")
        labels = {
            **spec.pairs(given.get("labels"), bare=""),
            PROJECT: self.project,
            f"com.docker.compose.{kind}": key,
            "com.docker.compose.version": spec.COMPOSE_VERSION,
        }
        if kind == "network":
            ref = api.create_network(
                name,
                driver=given.get("driver") or "bridge",
                options=given.get("driver_opts"),
                internal=bool(given.get("internal")),
                enable_ipv6=bool(given.get("enable_ipv6")),
                attachable=given.get("attachable"),
                labels=labels,
                check_duplicate=True,
            )["Id"]
        else:
            ref = api.create_volume(
                name, driver=given.get("driver"), driver_opts=given.get("driver_opts"), labels=labels
            )["Name"]
        self.created.objects.append(CreatedObject(kind, host_id, name, str(ref)))
        self.tell("", host_id, step, f"created {kind} {name}")

    def wait(self, service: str, dep: str, condition: str, plans: Sequence[Plan], timeout: float) -> None:
        """Wait until every replica of ``dep`` is healthy (or exited 0); fail at once when it cannot be."""
        healthy, deadline = condition == "service_healthy", time.monotonic() + timeout
        want = "healthy" if healthy else "completed successfully"
        pending = [p for p in plans if p.service == dep]
        for one in pending:
            self.tell(service, one.host_id, "Waiting", f"waiting for {one.name} to be {want}")
        while pending:
            for one in list(pending):
                self.at = (dep, one.host_id)
                state = self.clients[one.host_id].api.inspect_container(one.name)["State"]
                why = _not_ready(state, healthy)
                if why:
                    raise self.fail(dep, one.host_id, f"{service} waits for it to be {want}, but {why}")
                if state.get("Status") == "exited" or (state.get("Health") or {}).get("Status") == "healthy":
                    pending.remove(one)
                    self.tell(dep, one.host_id, "Healthy", f"{one.name} is {want}")
            if pending and time.monotonic() > deadline:
                why = f"timed out after {timeout:g} s waiting for it to be {want}"
                raise self.fail(dep, pending[0].host_id, why)
            if pending:
                time.sleep(_POLL)

    def start(self, plan: Plan) -> None:
        """Create and start one container; one of the project already there is kept if unchanged."""
        api, tell, where = self.clients[plan.host_id].api, self.tell, (plan.service, plan.host_id)
        # Anchored: the engine's name filter matches parts of names too.
        old = next(iter(api.containers(all=True, filters={"name": f"^/{plan.name}$"})), None)
        if old is not None:
            labels = old.get("Labels") or {}
            if labels.get(PROJECT) != self.project:
                raise self.fail(
                    *where, f"the name {plan.name} is already in use by another application's container"
                )
            newest = not self.refresh or old.get("ImageID") == api.inspect_image(plan.config["Image"])["Id"]
            if labels.get(CONFIG_HASH) == plan.config["Labels"][CONFIG_HASH] and newest:
                if old["State"] != "running":
                    tell(*where, "Starting", f"starting {plan.name}")
                    api.start(old["Id"])
                return tell(*where, "Done", f"{plan.name} is up to date")
            tell(*where, "Creating", f"{plan.name} changed: recreating it")
            api.remove_container(old["Id"], force=True)
        tell(*where, "Creating", f"creating {plan.name}")
        cid = api.create_container_from_config(plan.config, plan.name)["Id"]
        self.created.objects.append(CreatedObject("container", plan.host_id, plan.name, cid, plan.service))
        for _, name, aliases in plan.networks[1:]:  # API 1.41 takes one network at create
            api.connect_container_to_network(cid, name, aliases=aliases)
        tell(*where, "Starting", f"starting {plan.name}")
        api.start(cid)
        tell(*where, "Done", f"{plan.name} started")


def deploy(
    project: str,
    model: Mapping[str, Any],
    placements: Sequence[tuple[str, int, int]],
    clients: Clients,
    say: Say,
    *,
    login: Login = lambda host_id, image: None,
    health_timeout: float = 120.0,
    refresh: bool = False,
) -> Created:
    """Deploy ``model`` as ``project``, each ``(service, replica, host_id)`` of ``placements`` on
    ``clients[host_id]``; what it created. ``login(host_id, image)``: the engine's registry auth
    for a pull (None: anonymous). ``refresh`` (an update): pull every image again and recreate
    the containers whose tag now names a newer image, besides those whose service changed.
    Raises ``DeployFailed`` at the first failure."""
    run = _Run(project, clients, say, refresh)
    services, plans = model.get("services") or {}, []
    if not spec.PROJECT_NAME.fullmatch(project):
        raise run.fail("", 0, f"{project!r} is not a project name (lowercase letters, digits, - and _)")
    for service, replica, host_id in placements:
        try:
            if host_id not in clients or service not in services:
                raise ValueError("no client for that host" if service in services else "no such service")
            if services[service].get("container_name") and sum(p[0] == service for p in placements) > 1:
                raise ValueError("container_name allows a single replica only")
            plans.append(spec.plan(project, model, service, replica, host_id))
        except (ValueError, TypeError, KeyError) as exc:
            raise run.fail(service, host_id, str(exc)) from exc
    try:
        sequence = order(model)
    except Exception as exc:  # compose's ComposeInvalid or our ValueError: both said in words
        raise run.fail("", 0, str(exc)) from exc
    try:
        run.pull(plans, login)
        for host_id in dict.fromkeys(p.host_id for p in plans):
            mine = [p for p in plans if p.host_id == host_id]
            for key in dict.fromkeys(k for p in mine for k, _, _ in p.networks):
                run.ensure("network", host_id, key, (model.get("networks") or {}).get(key))
            for key in dict.fromkeys(k for p in mine for k in p.volumes):
                run.ensure("volume", host_id, key, (model.get("volumes") or {}).get(key))
        for service in sequence:
            for dep, (condition, _) in spec.dependencies(services[service]).items():
                if condition != "service_started" and any(p.service == service for p in plans):
                    run.wait(service, dep, condition, plans, health_timeout)
            for one in (p for p in plans if p.service == service):
                run.start(one)
    except DeployFailed:
        raise
    except Exception as exc:  # any engine error (API, connection) stops it, said for where it was
        raise run.fail(*run.at, explain(exc)) from exc
    return run.created


# -- afterwards --------------------------------------------------------------------------------


def _remove_each(
    items: list[CreatedObject], clients: Clients, say: Say, step: str, volumes: bool
) -> list[str]:
    """Remove each object, going on past a failure; what could not be removed, in words."""
    problems = []
    for o in items:
        if step:
            say(Progress(o.service, o.host_id, step, f"removing {o.kind} {o.name}"))
        try:
            api = clients[o.host_id].api
            if o.kind == "container":
                api.remove_container(o.ref, force=True, v=volumes)
            else:
                (api.remove_network if o.kind == "network" else api.remove_volume)(o.ref)
        except docker.errors.NotFound:
            pass  # already gone: what the caller wanted
        except Exception as exc:  # noqa: BLE001 - the rest is still removed; each problem reported
            why = "no client for that host" if isinstance(exc, KeyError) else describe_error(exc)
            problems.append(f"{o.kind} {o.name} on host {o.host_id}: {why}")
            say(Progress(o.service, o.host_id, "Failed", problems[-1], "error"))
            continue
        say(Progress(o.service, o.host_id, "Removed", f"removed {o.kind} {o.name}"))
    return problems


def roll_back(created: Created, clients: Clients, say: Say, *, volumes: bool = False) -> list[str]:
    """Remove what a deploy created, newest first (volumes only when asked); the problems left."""
    items = [o for o in reversed(created.objects) if o.kind != "volume" or volumes]
    return _remove_each(items, clients, say, "Rolling back", volumes)


def remove(project: str, clients: Clients, say: Say, *, volumes: bool = False) -> list[str]:
    """Remove every container and network (and volume when asked) of ``project``; the problems left."""
    label, items = {"label": f"{PROJECT}={project}"}, []
    for host_id, sdk in clients.items():
        for c in sdk.api.containers(all=True, filters=label):
            service = (c.get("Labels") or {}).get(SERVICE, "")
            items.append(CreatedObject("container", host_id, c["Names"][0].lstrip("/"), c["Id"], service))
        items += [
            CreatedObject("network", host_id, n["Name"], n["Id"]) for n in sdk.api.networks(filters=label)
        ]
        found = sdk.api.volumes(filters=label).get("Volumes") if volumes else None
        items += [CreatedObject("volume", host_id, v["Name"], v["Name"]) for v in found or ()]
    rank = {"container": 0, "network": 1, "volume": 2}
    return _remove_each(sorted(items, key=lambda o: rank[o.kind]), clients, say, "", volumes)


def status(project: str, clients: Clients) -> list[ContainerState]:
    """Every container of ``project`` on the engines, by service and replica."""
    found = []
    for host_id, sdk in clients.items():
        for item in sdk.api.containers(all=True, filters={"label": f"{PROJECT}={project}"}):
            state = one(host_id, sdk, item["Id"])
            if state is not None:
                found.append(state)
    return sorted(found, key=lambda s: (s.service, s.replica, s.host_id))


def one(host_id: int, sdk: Any, container_id: str) -> ContainerState | None:
    """One container's state (None once it is gone): what an engine event needs, one inspect."""
    try:
        attrs = sdk.api.inspect_container(container_id)
    except docker.errors.NotFound:
        return None  # removed since the list or the event
    labels, state = attrs["Config"].get("Labels") or {}, attrs["State"]
    bound = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    ports = tuple(
        f"{b['HostIp']}:{b['HostPort']}->{t}" for t, binds in sorted(bound.items()) for b in binds or ()
    )
    return ContainerState(
        host_id=host_id,
        service=labels.get(SERVICE, ""),
        replica=int(labels.get(NUMBER) or 0),
        container_id=attrs["Id"],
        name=attrs["Name"].lstrip("/"),
        state=state.get("Status", ""),
        health=(state.get("Health") or {}).get("Status", ""),
        ports=ports,
    )
