"""RPM's version order: epoch, then version, then release, each compared as rpmvercmp does
(digits against digits numerically, letters against letters, ``~`` sorts before anything,
``^`` after the base version).

The comparison itself is the PyPI package rpm-version (Rust, "sort algorithm identical to
RPM"); tests/patches/test_versions.py holds it to the machine's own rpm on a table of pairs.
Its ``sortkey`` turns an EVR into bytes that compare in RPM's order, so applicability over a
fleet compares plain bytes; keys are cached, since a fleet repeats the same versions.
"""

from __future__ import annotations

import functools

# No type information ships with it; the two calls used are wrapped, typed, below.
import rpm_version  # type: ignore[import-untyped]

from hosts.patches.records import Nevra


@functools.lru_cache(maxsize=65536)
def evr_key(epoch: int, version: str, release: str) -> bytes:
    """A key whose bytes order is RPM's order of (epoch, version, release)."""
    key: bytes = rpm_version.Evr(str(epoch), version, release).sortkey()
    return key


def key(nevra: Nevra) -> bytes:
    return evr_key(nevra.epoch, nevra.version, nevra.release)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as RPM orders the EVR strings ``[epoch:]version[-release]``."""
    result: int = rpm_version.evr_compare(a, b)
    return result
