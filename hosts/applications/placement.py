"""Where an application's containers go: each service's replicas placed on a project's hosts.

Pure and deterministic (no Django, no I/O): the caller turns the project's hosts into
``Candidate`` rows (what the engines last reported) and the Compose model into ``Need`` rows
(``needs_from``); ``plan`` answers with one ``Placement`` per replica, each with a reason a
person reads, or with the first service that does not fit and the rule that stopped it.

The rules are the ones Admiral users know: only hosts that are ON, pinning to a host by name,
tags a host must carry, enough free memory and CPUs, a host's container limit, a per-service
cap per host, and anti-affinity between a service's replicas (``spread``, on by default).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# Binary multiples throughout, as Docker reads Compose's memory values (units.RAMInBytes):
# there "1g" and "1gb" are both 2**30 bytes, so "1.5GB" here means what the engine will enforce.
_UNITS = {
    "": 1,
    "b": 1,
    "k": KiB,
    "kb": KiB,
    "kib": KiB,
    "m": MiB,
    "mb": MiB,
    "mib": MiB,
    "g": GiB,
    "gb": GiB,
    "gib": GiB,
    "t": 1024 * GiB,
    "tb": 1024 * GiB,
    "tib": 1024 * GiB,
}
_MEMORY = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)")

#: The keys of a service's ``x-portal`` extension; any other is refused, as a misspelt rule
#: silently ignored would place containers where the person said they must not go.
PORTAL_KEYS = ("host", "tags", "max_per_host", "spread")


@dataclass(frozen=True)
class Candidate:
    """One host of the project's pool as the planner sees it (what its engine last reported)."""

    id: int
    name: str
    on: bool
    tags: frozenset[str]
    memory_free: int  # bytes
    cpus_free: float
    containers: int  # containers on it now, running or not: they count against its limit
    max_containers: int | None = None  # None: no limit


@dataclass(frozen=True)
class Need:
    """One service of the application: how many replicas, what each needs, where it may go."""

    service: str
    replicas: int = 1
    memory: int = 0  # bytes per replica
    cpus: float = 0.0  # per replica
    pin: str = ""  # a host's name: every replica there
    tags: frozenset[str] = frozenset()  # a host must carry all of them
    max_per_host: int | None = None
    spread: bool = True  # replicas on different hosts

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise ValueError(f"{self.service}: replicas must be 0 or more, not {self.replicas}")
        if self.memory < 0 or self.cpus < 0:
            raise ValueError(f"{self.service}: memory and cpus cannot be negative")
        if self.max_per_host is not None and self.max_per_host < 1:
            raise ValueError(f"{self.service}: max_per_host must be 1 or more, not {self.max_per_host}")


@dataclass(frozen=True)
class Placement:
    """One replica on one host; ``replica`` counts from 1, as Compose numbers containers."""

    service: str
    replica: int
    host_id: int
    host: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """Every replica's host in the services' given order, or ``failure`` saying what did not fit.

    On failure ``placements`` holds the replicas placed before the one that failed, for showing
    a person how far it got: deploy nothing unless ``ok``.
    """

    placements: tuple[Placement, ...]
    failure: str = ""

    @property
    def ok(self) -> bool:
        return not self.failure

    def hosts_of(self, service: str) -> list[str]:
        return [p.host for p in self.placements if p.service == service]


def parse_memory(text: str | int) -> int:
    """Bytes from a Compose memory value: an int (bytes) or "512m", "1g", "1.5GB", "256MiB"."""
    if isinstance(text, bool):  # YAML's yes/no: an int to Python, never a size
        raise ValueError(f"memory {text!r}: not a size")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"memory {text!r}: cannot be negative")
        return int(text)
    if not isinstance(text, str):
        raise ValueError(f"memory {text!r}: expected bytes or a string such as 512m")
    match = _MEMORY.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"memory {text!r}: expected a number and a unit, such as 512m, 1.5GB or 256MiB")
    number, unit = match.groups()
    if unit not in _UNITS:
        raise ValueError(
            f"memory {text!r}: unknown unit {unit!r} (use b, k, m, g or t, e.g. 512m, 1gb, 256MiB)"
        )
    return round(float(number) * _UNITS[unit])


def format_bytes(n: int) -> str:
    """'2.0 GiB', '512 MiB': the sizes in reasons and failures."""
    if abs(n) >= GiB:
        return f"{n / GiB:.1f} GiB"
    for size, unit in ((MiB, "MiB"), (KiB, "KiB")):
        if abs(n) >= size:
            return f"{n / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} B"


def _count(service: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{service}: {key} must be a whole number, not {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{service}: {key} must be a whole number, not {value!r}") from None


def _cpus(service: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{service}: cpus must be a number such as 0.5, not {value!r}") from None


def _tags(service: str, value: Any) -> frozenset[str]:
    # A list in YAML, or "db, ssd" as a person types it on one line.
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"{service}: x-portal tags must be a list of tag names, not {value!r}")
    return frozenset(str(item).strip() for item in items if str(item).strip())


def _resource(service: str, svc: Mapping[str, Any], key: str) -> Any:
    """A reservation if given, else the limit: a reservation is what the service says it needs."""
    resources = (svc.get("deploy") or {}).get("resources") or {}
    for section in ("reservations", "limits"):
        value = (resources.get(section) or {}).get(key)
        if value is not None:
            return value
    # Compose's older service-level keys, still accepted by docker compose.
    for flat in ("mem_reservation", "mem_limit") if key == "memory" else ("cpus",):
        if svc.get(flat) is not None:
            return svc[flat]
    return None


def needs_from(model: Mapping[str, Any]) -> list[Need]:
    """One ``Need`` per service of a Compose model (a dict as loaded from YAML), in its order."""
    needs = []
    for name, svc in (model.get("services") or {}).items():
        svc = svc or {}
        deploy = svc.get("deploy") or {}
        replicas = deploy.get("replicas", svc.get("scale", 1))
        memory = _resource(name, svc, "memory")
        cpus = _resource(name, svc, "cpus")
        portal = svc.get("x-portal") or {}
        if not isinstance(portal, Mapping):
            raise ValueError(f"{name}: x-portal must be a mapping of {', '.join(PORTAL_KEYS)}")
        unknown = sorted(set(portal) - set(PORTAL_KEYS))
        if unknown:
            raise ValueError(f"{name}: x-portal has no rule {unknown[0]!r} (known: {', '.join(PORTAL_KEYS)})")
        spread = portal.get("spread", True)
        if not isinstance(spread, bool):
            raise ValueError(f"{name}: x-portal spread must be true or false, not {spread!r}")
        max_per_host = portal.get("max_per_host")
        try:
            mem_bytes = 0 if memory is None else parse_memory(memory)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        needs.append(
            Need(
                service=str(name),
                replicas=_count(name, "replicas", replicas),
                memory=mem_bytes,
                cpus=0.0 if cpus is None else _cpus(name, cpus),
                pin=str(portal.get("host") or "").strip(),
                tags=_tags(name, portal.get("tags") or []),
                max_per_host=None if max_per_host is None else _count(name, "max_per_host", max_per_host),
                spread=spread,
            )
        )
    return needs


# The rules in the order a host is tested against them. The order is a funnel: a host that
# fails a later rule passed every earlier one, so when no host is left the rule furthest down
# that rejected any is the one that took away the last candidates, and naming it (with those
# hosts' figures) tells the person what to change.
_PIN, _TAGS, _ON, _SPREAD, _PER_HOST, _LIMIT, _MEMORY_RULE, _CPUS = range(8)


class _Host:
    """A candidate's figures as this plan uses them up."""

    __slots__ = ("cand", "containers", "cpus", "memory", "of_service")

    def __init__(self, cand: Candidate) -> None:
        self.cand = cand
        self.memory = cand.memory_free
        self.cpus = cand.cpus_free
        self.containers = cand.containers
        self.of_service: dict[int, int] = {}  # need's index -> replicas placed here


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _names(hosts: list[_Host], most: int = 3) -> str:
    names = [h.cand.name for h in hosts[:most]]
    return ", ".join(names) + (f" and {len(hosts) - most} more" if len(hosts) > most else "")


def _rejection(need: Need, index: int, host: _Host) -> int | None:
    """The first rule ``host`` fails for one more replica of ``need``, None if it qualifies."""
    cand = host.cand
    if need.pin and cand.name != need.pin:
        return _PIN
    if not need.tags <= cand.tags:
        return _TAGS
    if not cand.on:
        return _ON
    placed = host.of_service.get(index, 0)
    if need.spread and placed:
        return _SPREAD
    if need.max_per_host is not None and placed >= need.max_per_host:
        return _PER_HOST
    if cand.max_containers is not None and host.containers >= cand.max_containers:
        return _LIMIT
    if host.memory < need.memory:
        return _MEMORY_RULE
    if host.cpus < need.cpus:
        return _CPUS
    return None


def _where(need: Need, one_host: str) -> str:
    """The hosts a service may use, in words: 'tagged db, ssd', 'chosen host photon-1'."""
    parts = []
    if one_host:
        parts.append(f"chosen host {one_host}")
    if need.pin:
        parts.append(f"pinned to {need.pin}")
    if need.tags:
        parts.append("tagged " + ", ".join(sorted(need.tags)))
    return "; ".join(parts)


def _failure(need: Need, replica: int, rule: int, stopped: list[_Host], qualified: int, one_host: str) -> str:
    """Why replica ``replica`` of ``need`` found no host; ``stopped``: the hosts ``rule`` rejected,
    ``qualified``: how many hosts passed pin, tags and ON."""
    s = need.service
    tags = ", ".join(sorted(need.tags))
    if rule == _PIN:
        return f"{s}: pinned to {need.pin}, which is not " + (
            f"the chosen host {one_host}" if one_host else "one of the project's hosts"
        )
    if rule == _TAGS:
        if need.pin:
            return f"{s}: pinned to {need.pin}, which is not tagged {tags}"
        if one_host:
            return f"{s}: the chosen host {one_host} is not tagged {tags}"
        that = "that tag" if len(need.tags) == 1 else "all those tags"
        if len(stopped) == 1:
            return f"{s}: no host tagged {tags} is ON (the only host, {_names(stopped)}, lacks {that})"
        return f"{s}: no host tagged {tags} is ON (none of the project's {len(stopped)} hosts has {that})"
    if rule == _ON:
        if need.pin:
            return f"{s}: pinned to {need.pin}, which is OFF"
        if one_host:
            return f"{s}: the chosen host {one_host} is OFF"
        return f"{s}: no host{' tagged ' + tags if tags else ''} is ON ({_names(stopped)} OFF)"
    where = _where(need, one_host)
    if rule == _SPREAD:
        return (
            f"{s}: {need.replicas} replicas to spread but only {_plural(qualified, 'host')} "
            + ("qualifies" if qualified == 1 else "qualify")
            + (f" ({where})" if where else "")
            + "; x-portal spread: false lets replicas share a host"
        )
    if rule == _PER_HOST:
        return (
            f"{s}: replica {replica} of {need.replicas} would exceed max_per_host {need.max_per_host} "
            f"on every qualifying host ({_names(stopped)})"
        )
    if rule == _LIMIT:
        full = ", ".join(f"{h.cand.name} {h.containers}/{h.cand.max_containers}" for h in stopped[:3])
        which = "every qualifying host" if replica == 1 else f"replica {replica}: every host left"
        return f"{s}: {which} is at its container limit ({full})"
    best = max(stopped, key=lambda h: (h.memory, h.cpus) if rule == _MEMORY_RULE else (h.cpus, h.memory))
    reduced = best.memory != best.cand.memory_free or best.cpus != best.cand.cpus_free
    after = ", after this plan's other replicas" if reduced else ""
    if rule == _MEMORY_RULE:
        return (
            f"{s}: needs {format_bytes(need.memory)}, the most free on a qualifying host is "
            f"{format_bytes(best.memory)} ({best.cand.name}{after})"
        )
    return (
        f"{s}: needs {need.cpus:g} CPUs, the most free on a qualifying host is {best.cpus:g} "
        f"({best.cand.name}{after})"
    )


def _reason(need: Need, chosen: _Host, eligible: int, replica: int, one_host: str) -> str:
    free = f"{format_bytes(chosen.memory)} free"
    if one_host:
        return f"the host chosen for the whole application ({free})"
    if need.pin:
        return f"pinned to {need.pin} by x-portal host ({free})"
    qualifier = f" tagged {', '.join(sorted(need.tags))}" if need.tags else ""
    if need.spread and replica > 1:
        qualifier += f" not yet running {need.service}"  # spread: the earlier replicas' hosts are out
    if eligible == 1:
        return f"the only host{qualifier} that fits ({free})"
    return f"most free memory of {eligible} hosts{qualifier} ({free})"


def plan(
    needs: Sequence[Need],
    pool: Sequence[Candidate],
    *,
    one_host: str = "",
    existing: Mapping[str, Mapping[int, int]] | None = None,
) -> Plan:
    """Place every replica of ``needs`` on ``pool`` (the project's hosts); ``one_host``: the
    person chose one host for everything, and every rule is still checked on it. ``existing``:
    replicas already running, per service and host id (a scale): they count against spread and
    max_per_host, and only the replicas after them are placed, numbered on from them (the
    pool's figures already count what they reserve)."""
    already = existing or {}
    hosts = [_Host(c) for c in pool]
    for index, need in enumerate(needs):
        for host in hosts:
            if already.get(need.service, {}).get(host.cand.id):
                host.of_service[index] = already[need.service][host.cand.id]
    if one_host:
        hosts = [h for h in hosts if h.cand.name == one_host]
        if not hosts:
            return Plan((), f"the chosen host {one_host} is not one of the project's hosts")
    # The most constrained first, so a flexible service does not take the room a pinned or
    # tagged one has nowhere else to find; the given order breaks ties so the plan is stable.
    order = sorted(
        range(len(needs)),
        key=lambda i: (not needs[i].pin, not needs[i].tags, -needs[i].memory, -needs[i].cpus, i),
    )
    placed: list[tuple[int, Placement]] = []
    failure = ""
    for index in order:
        need = needs[index]
        running = sum(already.get(need.service, {}).values())
        for replica in range(running + 1, need.replicas + 1):
            chosen: _Host | None = None
            eligible = 0
            furthest = -1
            stopped: list[_Host] = []
            qualified = 0
            for host in hosts:
                rule = _rejection(need, index, host)
                if rule is None:
                    eligible += 1
                    # Most free memory, then fewer containers, then the name: the same pool
                    # always gives the same plan.
                    if chosen is None or (-host.memory, host.containers, host.cand.name) < (
                        -chosen.memory,
                        chosen.containers,
                        chosen.cand.name,
                    ):
                        chosen = host
                    continue
                if rule > _ON:
                    qualified += 1
                if rule > furthest:
                    furthest, stopped = rule, [host]
                elif rule == furthest:
                    stopped.append(host)
            if chosen is None:
                if not hosts:
                    failure = f"{need.service}: the project has no hosts"
                else:
                    failure = _failure(need, replica, furthest, stopped, qualified, one_host)
                break
            reason = _reason(need, chosen, eligible, replica, one_host)
            placed.append((index, Placement(need.service, replica, chosen.cand.id, chosen.cand.name, reason)))
            chosen.memory -= need.memory
            chosen.cpus -= need.cpus
            chosen.containers += 1
            chosen.of_service[index] = chosen.of_service.get(index, 0) + 1
        if failure:
            break
    placed.sort(key=lambda item: (item[0], item[1].replica))
    return Plan(tuple(p for _, p in placed), failure)
