"""What a patch change will do on one host: the exact package transitions, planned in the portal
from the host's installed packages and its repositories' cached metadata (no package manager
runs to plan), JSON round-trippable so a change row can store it and the apply engine
(:mod:`.apply`) can hold the host to it.

A selection is one of

- ``security``: every applicable security advisory;
- ``advisories``: the advisories named (ids that do not apply to this host add nothing: a
  fleet-wide change names advisories some hosts do not need);
- ``all``: every update;

minus ``exclude``: package names, or shell-style globs as tdnf's ``--exclude`` takes them
(``linux*``), matched against the name only.

Each transition goes to the **newest** version the host's repositories offer for that name and
architecture, as ``tdnf update`` and ``tdnf update --security`` do (an advisory names the
version that first fixes; a newer one fixes too, and the older may no longer be served).

A reboot is planned when a transition is of a package that is not in use until the host
starts again (:data:`REBOOT_PACKAGES`), or an advisory marks it ``reboot_suggested``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hosts.patches.applicability import RepoIndex, applicability
from hosts.patches.records import Nevra, RepoMetadata

#: Packages whose new version runs only after a reboot, and why. Photon's kernel flavours
#: (linux, linux-esx for vSphere, linux-secure, linux-rt, linux-aws): the running kernel is
#: the old one until the host boots the new. systemd: PID 1 keeps running the old binary
#: (``daemon-reexec`` is not the whole story: its libraries and the journal stay). glibc:
#: every running process keeps the old library mapped; only a reboot restarts them all.
REBOOT_PACKAGES: dict[str, str] = {
    **{name: "kernel" for name in ("linux", "linux-esx", "linux-secure", "linux-rt", "linux-aws")},
    "systemd": "systemd (PID 1 runs the old one until the host restarts)",
    "glibc": "glibc (every running process keeps the old library until the host restarts)",
}

KINDS = ("security", "advisories", "all")


class PlanError(ValueError):
    """A selection or a stored plan that cannot be used; the message is fit to show a person."""


@dataclass(frozen=True)
class Selection:
    kind: str
    advisory_ids: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise PlanError(f"unknown selection {self.kind!r}: one of {', '.join(KINDS)}")
        if self.kind == "advisories" and not self.advisory_ids:
            raise PlanError("choose at least one advisory")

    def excludes(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.exclude)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "advisory_ids": list(self.advisory_ids), "exclude": list(self.exclude)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Selection:
        return cls(str(data["kind"]), tuple(data["advisory_ids"]), tuple(data["exclude"]))


@dataclass(frozen=True)
class Transition:
    """One package moved from the installed version to the planned one."""

    installed: Nevra
    target: Nevra
    #: The applicable advisories this transition fixes, by id.
    advisories: tuple[str, ...] = ()
    #: Why this package needs a reboot ("" when it does not).
    reboot_reason: str = ""

    @property
    def key(self) -> str:
        """name.arch: what identifies a package on a host (a name may be installed for two arches)."""
        return f"{self.installed.name}.{self.installed.arch}"

    def to_json(self) -> dict[str, Any]:
        return {
            "installed": self.installed.to_json(),
            "target": self.target.to_json(),
            "advisories": list(self.advisories),
            "reboot_reason": self.reboot_reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transition:
        return cls(
            Nevra.from_json(data["installed"]),
            Nevra.from_json(data["target"]),
            tuple(data["advisories"]),
            str(data["reboot_reason"]),
        )


@dataclass(frozen=True)
class HostPatchPlan:
    selection: Selection
    transitions: tuple[Transition, ...]
    #: Transitions the selection would have made but ``exclude`` left out (shown, not applied).
    excluded: tuple[Transition, ...] = ()
    host: str = ""
    reboot_reasons: tuple[str, ...] = field(default=())

    @property
    def reboot(self) -> bool:
        return bool(self.reboot_reasons)

    @property
    def empty(self) -> bool:
        return not self.transitions

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "selection": self.selection.to_json(),
            "transitions": [t.to_json() for t in self.transitions],
            "excluded": [t.to_json() for t in self.excluded],
            "reboot_reasons": list(self.reboot_reasons),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostPatchPlan:
        return cls(
            host=str(data["host"]),
            selection=Selection.from_json(data["selection"]),
            transitions=tuple(Transition.from_json(t) for t in data["transitions"]),
            excluded=tuple(Transition.from_json(t) for t in data["excluded"]),
            reboot_reasons=tuple(data["reboot_reasons"]),
        )


def reboot_reason(name: str, advisories: Iterable[tuple[str, bool]]) -> str:
    """Why updating ``name`` needs a reboot: Photon's list first, then the advisories' flag."""
    if name in REBOOT_PACKAGES:
        return f"{name}: {REBOOT_PACKAGES[name]}"
    flagged = sorted(advisory for advisory, reboot in advisories if reboot)
    if flagged:
        return f"{name}: {', '.join(flagged)} suggests a reboot"
    return ""


def plan_host(
    installed: Iterable[Nevra],
    repos: Iterable[RepoMetadata] | RepoIndex,
    selection: Selection,
    *,
    host: str = "",
) -> HostPatchPlan:
    """The transitions ``selection`` makes on a host with ``installed`` and these repositories."""
    index = repos if isinstance(repos, RepoIndex) else RepoIndex(repos)
    status = applicability(installed, index)
    # For each installed (name, arch): the applicable advisories that fix it, with the flag.
    fixes: dict[tuple[str, str], list[tuple[str, str, bool]]] = {}
    for applicable in status.advisories:
        advisory = applicable.advisory
        for package in advisory.packages:
            fixed = package.nevra
            if fixed in applicable.packages:
                fixes.setdefault((fixed.name, fixed.arch), []).append(
                    (advisory.id, advisory.type, package.reboot_suggested)
                )

    def advisories_of(nevra: Nevra) -> list[tuple[str, str, bool]]:
        # An advisory's noarch package fixes the installed noarch one; its arch must match otherwise.
        return fixes.get((nevra.name, nevra.arch), []) + (
            fixes.get((nevra.name, "noarch"), []) if nevra.arch != "noarch" else []
        )

    chosen: list[Transition] = []
    excluded: list[Transition] = []
    for update in status.updates:
        found = advisories_of(update.installed)
        if selection.kind == "security":
            found = [f for f in found if f[1] == "security"]
            if not found:
                continue
        elif selection.kind == "advisories":
            found = [f for f in found if f[0] in selection.advisory_ids]
            if not found:
                continue
        transition = Transition(
            installed=update.installed,
            target=update.available,
            advisories=tuple(sorted({f[0] for f in found})),
            reboot_reason=reboot_reason(update.installed.name, [(f[0], f[2]) for f in found]),
        )
        (excluded if selection.excludes(update.installed.name) else chosen).append(transition)
    return HostPatchPlan(
        selection=selection,
        transitions=tuple(chosen),
        excluded=tuple(excluded),
        host=host,
        reboot_reasons=tuple(t.reboot_reason for t in chosen if t.reboot_reason),
    )
