"""Judging a patch run from rpm's database: did exactly the planned packages move, and what
putting the recorded versions back takes. Pure functions of two ``rpm -qa`` readings.

Packages are compared per ``name.arch`` as sets of NEVRAs: a kernel installed beside the old
one (tdnf keeps install-only packages side by side) is the planned one added, not a change of
the old one.

One exception to "read rpm, not the tool": a %post (or %postun, %posttrans) scriptlet that fails
is a *warning* to RPM: the new version stays installed and rpm, dnf and tdnf all exit 0 (the lab
shows it for rpm and dnf; tdnf's exit is rpmtsRun's, the same count). RPM's database keeps no
trace of it either. The one place it is said is librpm's own warning line, ``warning:
%post(NEVRA) scriptlet failed, exit status N`` (lib/rpmscript.c), which librpm writes whichever
front end runs the transaction. :func:`scriptlet_failures` reads exactly that line, and only to
decide *against* the update (roll back), never to declare success.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from hosts.patches import versions
from hosts.patches.plan import HostPatchPlan
from hosts.patches.records import Nevra

SCRIPTLET_FAILED = re.compile(
    r"^warning: %(?P<script>\w+)\((?P<nevra>[^()\s]+)\) scriptlet failed, (?:exit status|signal) \d+\s*$",
    re.M,
)

Grouped = dict[str, frozenset[Nevra]]


def key_of(nevra: Nevra) -> str:
    return f"{nevra.name}.{nevra.arch}"


def grouped(packages: Iterable[Nevra]) -> Grouped:
    found: dict[str, set[Nevra]] = defaultdict(set)
    for nevra in packages:
        found[key_of(nevra)].add(nevra)
    return {key: frozenset(value) for key, value in found.items()}


def _show(nevras: frozenset[Nevra] | None) -> str:
    return ", ".join(sorted(str(n) for n in nevras)) if nevras else "not installed"


def stale(installed: Iterable[Nevra], plan: HostPatchPlan) -> list[str]:
    """Planned packages whose installed version is no longer the one planned from."""
    now = grouped(installed)
    return [
        f"{t.key} is {_show(now.get(t.key))}, the plan was made for {t.installed}"
        for t in plan.transitions
        if t.installed not in now.get(t.key, frozenset())
    ]


def package_problems(before: Iterable[Nevra], after: Iterable[Nevra], plan: HostPatchPlan) -> list[str]:
    """What differs from "the planned packages at the planned builds, nothing else moved"."""
    old, new = grouped(before), grouped(after)
    planned = {t.key: t for t in plan.transitions}
    problems = []
    for key, transition in planned.items():
        have = new.get(key, frozenset())
        allowed = old.get(key, frozenset()) | {transition.target}
        if transition.target not in have or not have <= allowed:
            problems.append(f"{key} is {_show(have)}, planned {transition.target}")
    for key in sorted((set(old) | set(new)) - set(planned)):
        if old.get(key) != new.get(key):
            problems.append(
                f"{key} moved although not planned: {_show(old.get(key))} -> {_show(new.get(key))}"
            )
    return problems


def scriptlet_failures(text: str, packages: Iterable[Nevra]) -> list[str]:
    """librpm's scriptlet-failure warnings in ``text`` that name one of ``packages``."""
    names = {str(p) for p in packages} | {f"{p.name}-{p.version}-{p.release}.{p.arch}" for p in packages}
    return [
        f"the %{m['script']} scriptlet of {m['nevra']} failed"
        for m in SCRIPTLET_FAILED.finditer(text)
        if m["nevra"] in names
    ]


@dataclass(frozen=True)
class Restore:
    """What puts the recorded packages back: older builds to downgrade to, removed ones to
    install again, and ones the run brought in to remove."""

    downgrade: tuple[Nevra, ...]
    install: tuple[Nevra, ...]
    remove: tuple[Nevra, ...]

    @property
    def empty(self) -> bool:
        return not (self.downgrade or self.install or self.remove)


def restore(recorded: Iterable[Nevra], now: Iterable[Nevra]) -> Restore:
    old, new = grouped(recorded), grouped(now)
    downgrade: list[Nevra] = []
    install: list[Nevra] = []
    remove: list[Nevra] = []
    for key in sorted(set(old) | set(new)):
        missing = old.get(key, frozenset()) - new.get(key, frozenset())
        extra = new.get(key, frozenset()) - old.get(key, frozenset())
        if missing and extra and max(map(versions.key, extra)) > max(map(versions.key, missing)):
            # A newer build replaced the recorded one: a downgrade swaps it back in one transaction.
            downgrade += sorted(missing)
        elif missing:
            # Removed, or replaced by an older build: install takes the recorded one back.
            install += sorted(missing)
        elif extra:
            remove += sorted(extra)
    return Restore(tuple(downgrade), tuple(install), tuple(remove))


def differing(recorded: Iterable[Nevra], now: Iterable[Nevra]) -> list[str]:
    """name.arch of every package not as recorded."""
    old, new = grouped(recorded), grouped(now)
    return sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
