"""What a page missed: every live event is also kept, per topic, for a short while, with
a position; a page renders with the position it was rendered at, and its subscription
asks for what came after (or, after a lost connection, after the last event it saw).

On Redis the keeping is a stream per topic (XADD, trimmed to KEEP entries; its ids are the
positions, "milliseconds-sequence"); on the embedded default a bounded list in the process.
When what a page asks for was already trimmed, ``since`` answers None and the page is told
to re-read instead of showing a hole.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any

from . import redis_client

#: Events kept per topic: minutes of a busy host page, hours of a quiet one.
KEEP = 200
#: A topic nobody published to for this long is dropped (Redis key expiry).
KEEP_SECONDS = 3600


def parse(position: str) -> tuple[int, int]:
    """ "1733412345678-3" -> (1733412345678, 3); anything else -> (0, 0), i.e. "from the start"."""
    ms, _, seq = position.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return 0, 0


def _key(topic: str) -> str:
    return f"portal:replay:{topic}"


class _Memory:
    """The embedded default's keeping: one process, so a dict of bounded deques."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.topics: dict[str, deque[tuple[tuple[int, int], str]]] = {}
        self.dropped: dict[str, tuple[int, int]] = {}
        self.last = (0, 0)

    def mark(self) -> tuple[int, int]:
        with self.lock:
            return max(self.last, (int(time.time() * 1000) - 1, 0))

    def record(self, topic: str, payload: str) -> tuple[int, int]:
        with self.lock:
            ms = int(time.time() * 1000)
            self.last = (ms, 0) if ms > self.last[0] else (self.last[0], self.last[1] + 1)
            kept = self.topics.setdefault(topic, deque())
            kept.append((self.last, payload))
            while len(kept) > KEEP:
                self.dropped[topic] = kept.popleft()[0]
            return self.last

    def since(self, topic: str, after: tuple[int, int]) -> list[tuple[tuple[int, int], str]] | None:
        with self.lock:
            if self.dropped.get(topic, (0, 0)) > after:
                return None
            return [(pos, payload) for pos, payload in self.topics.get(topic, ()) if pos > after]


_memory = _Memory()


def _text(position: tuple[int, int]) -> str:
    return f"{position[0]}-{position[1]}"


def mark() -> str:
    """The position now: events after it are what a page rendered now has not shown."""
    r = redis_client.client()
    if r is None:
        return _text(_memory.mark())
    seconds, micros = r.time()  # Redis's clock: the one its stream ids come from
    # A millisecond back: an event kept in this very millisecond, before or after the
    # page was read, is sent again rather than perhaps never (replacing a row by its id
    # twice is harmless; a hole is not).
    return f"{int(seconds) * 1000 + int(micros) // 1000 - 1}-0"


def record(topic: str, html: str, data: Any) -> str:
    """Keep an event of ``topic``; its position. Raises if Redis does not answer."""
    payload = json.dumps({"html": html, "data": data}, default=str)
    r = redis_client.client()
    if r is None:
        return _text(_memory.record(topic, payload))
    with r.pipeline(transaction=False) as pipe:
        pipe.xadd(_key(topic), {"e": payload}, maxlen=KEEP, approximate=False)
        pipe.expire(_key(topic), KEEP_SECONDS)
        position, _ = pipe.execute()
    return position.decode() if isinstance(position, bytes) else str(position)


def since(topic: str, position: str) -> list[tuple[str, dict[str, Any]]] | None:
    """The events of ``topic`` after ``position``, oldest first, as (position, {"html", "data"});
    None when some of them were already trimmed (the page must re-read instead)."""
    after = parse(position)
    r = redis_client.client()
    if r is None:
        found = _memory.since(topic, after)
        return None if found is None else [(_text(pos), json.loads(p)) for pos, p in found]
    key = _key(topic)
    with r.pipeline(transaction=False) as pipe:
        pipe.xinfo_stream(key)
        pipe.xrange(key, min=f"({_text(after)}", max="+", count=KEEP + 1)
        info, entries = pipe.execute(raise_on_error=False)
    if isinstance(info, Exception):  # no such stream: nothing published to the topic lately
        return []
    # Trimmed entries all came before the first one kept: if any were trimmed and the
    # first kept is after ``after``, some of what the page asks for may be gone.
    first = info.get("first-entry")
    trimmed = int(info.get("entries-added", 0)) > int(info.get("length", 0))
    if trimmed and first and parse(_str(first[0])) > after:
        return None
    return [
        (_str(raw_id), json.loads(_str(fields.get(b"e", fields.get("e", b"{}")))))
        for raw_id, fields in entries
    ]


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
