"""Pausing Python's cyclic garbage collector around a bulk read.

A vCenter sync builds hundreds of thousands of small, acyclic objects (an XML tree,
then dicts and rows) that reference counting frees on its own. The cyclic collector
does not know that: every 700 allocations it runs, and as the objects survive it scans
older and older generations, Django's own objects included. Measured on a sync of
2,000 VMs, that was a third of its time (0.54 s against 0.35 s with it paused).

The collector is one per process, so pauses are counted: it runs again when the
last pause ends, and only if it was running when the first began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_resume = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside the block (reference counting still frees)."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
