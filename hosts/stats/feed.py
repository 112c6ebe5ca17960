"""A container page's stats stream, kept in the history too: the engine's readings arrive once a
second; each is compared with the one before (its rates) and the history keeps one every STEP."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from hosts.stats import history
from hosts.stats.sampling import Counters, between, counters

#: Containers whose last reading this process remembers (the streams of open pages).
MAX_REMEMBERED = 2000

_lock = threading.Lock()
_before: OrderedDict[tuple[int, str], Counters] = OrderedDict()


def on_stats(host_id: int, container_id: str, raw: dict[str, Any]) -> None:
    """Called by the container stats follower (hosts.fleet.watch.STATS_LISTENERS) per reading."""
    now = counters(raw)
    key = (host_id, container_id)
    with _lock:
        previous = _before.pop(key, None)
        _before[key] = now
        while len(_before) > MAX_REMEMBERED:
            _before.popitem(last=False)
    sample = between(previous, now) if previous is not None else None
    if sample is not None:
        history.record(host_id, container_id, sample)
