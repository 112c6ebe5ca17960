"""Which updates and advisories apply to a host: a pure function of its installed packages
and its repositories' cached metadata, as Katello and Pulp compute it (no package manager
runs on the host).

- An **update** applies to an installed package when an enabled repository has a package of
  the same name and a compatible architecture (the same, or noarch on either side, as
  libsolv allows) with a higher epoch-version-release; the newest one is offered.
- An **advisory** applies when one of its packages is installed at a lower version (the
  newest installed of that name and architecture: an older kernel kept beside a fixed one
  is not pending) and a repository has that fixed version or a newer one.

Obsoletes are not followed (a package renamed through Obsoletes shows no update); Photon's
updates are version bumps of the same name. RPM's order is :mod:`hosts.patches.versions`'.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from hosts.patches import versions
from hosts.patches.records import Advisory, Nevra, RepoMetadata

NOARCH = "noarch"


@dataclass(frozen=True)
class Update:
    installed: Nevra
    available: Nevra
    #: The URL of the repository that offers it.
    repo: str


@dataclass(frozen=True)
class ApplicableAdvisory:
    advisory: Advisory
    #: The advisory's packages that fix something installed on this host.
    packages: tuple[Nevra, ...]
    reboot_suggested: bool


@dataclass(frozen=True)
class HostApplicability:
    updates: tuple[Update, ...]
    advisories: tuple[ApplicableAdvisory, ...]

    def of_type(self, kind: str) -> list[ApplicableAdvisory]:
        return [a for a in self.advisories if a.advisory.type == kind]

    @property
    def reboot_suggested(self) -> bool:
        return any(a.reboot_suggested for a in self.advisories)


def compatible(a: str, b: str) -> bool:
    return a in (b, NOARCH) or b == NOARCH


@dataclass(frozen=True)
class _Offer:
    arch: str
    rank: bytes  # RPM order, as bytes (versions.key)
    nevra: Nevra
    repo: str


@dataclass(frozen=True)
class _Fix:
    arch: str
    rank: bytes  # RPM order, as bytes (versions.key)
    nevra: Nevra
    reboot: bool
    advisory: Advisory


class RepoIndex:
    """A host's enabled repositories, indexed once and shared by every host that has the same
    set: the newest package per name and architecture, and advisories by package name."""

    def __init__(self, repos: Iterable[RepoMetadata]) -> None:
        newest: dict[tuple[str, str], _Offer] = {}
        fixes: dict[str, list[_Fix]] = defaultdict(list)
        seen: set[str] = set()
        for repo in repos:
            for nevra in repo.packages:
                key = versions.key(nevra)
                current = newest.get((nevra.name, nevra.arch))
                if current is None or key > current.rank:
                    newest[(nevra.name, nevra.arch)] = _Offer(nevra.arch, key, nevra, repo.url)
            for advisory in repo.advisories:
                # The same advisory in two repositories (a mirror, a snapshot) counts once.
                if advisory.id in seen:
                    continue
                seen.add(advisory.id)
                for package in advisory.packages:
                    nevra = package.nevra
                    fix = _Fix(nevra.arch, versions.key(nevra), nevra, package.reboot_suggested, advisory)
                    fixes[nevra.name].append(fix)
        self.offers: dict[str, list[_Offer]] = defaultdict(list)
        for (name, _), offer in newest.items():
            self.offers[name].append(offer)
        self.fixes = dict(fixes)

    def best(self, name: str, arch: str) -> _Offer | None:
        """The newest package named ``name`` installable over ``arch`` (the same arch first on a tie)."""
        found = None
        for offer in self.offers.get(name, ()):
            if compatible(offer.arch, arch) and (
                found is None or offer.rank > found.rank or (offer.rank == found.rank and offer.arch == arch)
            ):
                found = offer
        return found


def _newest_installed(installed: Iterable[Nevra]) -> dict[tuple[str, str], tuple[bytes, Nevra]]:
    newest: dict[tuple[str, str], tuple[bytes, Nevra]] = {}
    for nevra in installed:
        key = versions.key(nevra)
        current = newest.get((nevra.name, nevra.arch))
        if current is None or key > current[0]:
            newest[(nevra.name, nevra.arch)] = (key, nevra)
    return newest


def applicability(installed: Iterable[Nevra], index: RepoIndex) -> HostApplicability:
    newest = _newest_installed(installed)
    updates = []
    applied: dict[str, list[_Fix]] = {}
    for (name, arch), (key, nevra) in newest.items():
        offer = index.best(name, arch)
        if offer is not None and offer.rank > key:
            updates.append(Update(nevra, offer.nevra, offer.repo))
        for fix in index.fixes.get(name, ()):
            if compatible(fix.arch, arch) and key < fix.rank and offer is not None and offer.rank >= fix.rank:
                applied.setdefault(fix.advisory.id, []).append(fix)
    advisories = [
        ApplicableAdvisory(
            advisory=fixes[0].advisory,
            packages=tuple(sorted({f.nevra for f in fixes})),
            reboot_suggested=any(f.reboot for f in fixes),
        )
        for _, fixes in sorted(applied.items())
    ]
    return HostApplicability(tuple(sorted(updates, key=lambda u: u.installed)), tuple(advisories))
