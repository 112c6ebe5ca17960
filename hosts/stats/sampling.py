"""Docker's stats, as figures a chart plots: CPU in percent of one core (Docker's own measure:
200 is two cores busy), memory in bytes, network and block I/O in bytes per second.

The engine reports counters that only grow (CPU time, bytes received, bytes read); a rate is the
difference between two readings over the time between them. Pure functions: no engine, no storage."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Counters:
    """One reading's counters, as the engine gave them."""

    at: float  # seconds since the epoch, the engine's clock
    cpu: int  # the container's CPU time, ns
    system: int  # the host's CPU time, ns
    cpus: int
    memory: int  # bytes in use, less the page cache the kernel can drop (as `docker stats`)
    net_rx: int
    net_tx: int
    blk_read: int
    blk_write: int


@dataclass(frozen=True)
class Sample:
    """What a chart shows at one time."""

    t: float
    cpu: float
    mem: int
    net_rx: float
    net_tx: float
    blk_r: float
    blk_w: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value >= 0 else 0


#: The engine's "read" time: UTC, with up to nanoseconds (more than fromisoformat takes).
READ_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z")


def _at(read: Any) -> float:
    found = READ_TIME.fullmatch(str(read))
    if found is None:
        return 0.0
    whole = datetime.fromisoformat(found[1] + "+00:00").timestamp()
    return whole + float("0." + (found[2] or "0"))


def counters(raw: dict[str, Any]) -> Counters:
    """The counters of one ``/containers/ID/stats`` answer (missing parts read as zero: a
    stopped container's answer is mostly empty)."""
    cpu = raw.get("cpu_stats") or {}
    memory = raw.get("memory_stats") or {}
    details = memory.get("stats") or {}
    cache = _int(details.get("inactive_file", details.get("total_inactive_file", 0)))
    networks = (raw.get("networks") or {}).values()
    io = (raw.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    return Counters(
        at=_at(raw.get("read")),
        cpu=_int((cpu.get("cpu_usage") or {}).get("total_usage")),
        system=_int(cpu.get("system_cpu_usage")),
        cpus=_int(cpu.get("online_cpus")) or 1,
        memory=max(0, _int(memory.get("usage")) - cache),
        net_rx=sum(_int(n.get("rx_bytes")) for n in networks if isinstance(n, dict)),
        net_tx=sum(_int(n.get("tx_bytes")) for n in networks if isinstance(n, dict)),
        blk_read=sum(_int(e.get("value")) for e in io if str(e.get("op", "")).lower() == "read"),
        blk_write=sum(_int(e.get("value")) for e in io if str(e.get("op", "")).lower() == "write"),
    )


def between(before: Counters, now: Counters) -> Sample | None:
    """The figures from ``before`` to ``now`` (None when they cannot be compared: the same
    reading, or counters that went back, as after a container's restart)."""
    seconds = now.at - before.at
    grew = [
        now.cpu - before.cpu,
        now.net_rx - before.net_rx,
        now.net_tx - before.net_tx,
        now.blk_read - before.blk_read,
        now.blk_write - before.blk_write,
    ]
    if seconds <= 0 or min(grew) < 0:
        return None
    system = now.system - before.system
    cpu = (grew[0] / system) * now.cpus * 100 if system > 0 else 0.0
    return Sample(
        t=now.at,
        cpu=round(cpu, 2),
        mem=now.memory,
        net_rx=round(grew[1] / seconds, 1),
        net_tx=round(grew[2] / seconds, 1),
        blk_r=round(grew[3] / seconds, 1),
        blk_w=round(grew[4] / seconds, 1),
    )


def total(samples: list[Sample], at: float) -> Sample:
    """A host's figures: the sum of its containers' at one time."""
    return Sample(
        t=at,
        cpu=round(sum(s.cpu for s in samples), 2),
        mem=sum(s.mem for s in samples),
        net_rx=round(sum(s.net_rx for s in samples), 1),
        net_tx=round(sum(s.net_tx for s in samples), 1),
        blk_r=round(sum(s.blk_r for s in samples), 1),
        blk_w=round(sum(s.blk_w for s in samples), 1),
    )
