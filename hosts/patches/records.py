"""The records patch status is computed from: plain, frozen, JSON round-trippable.

A repository's metadata (:class:`RepoMetadata`) is what the portal caches per repository
(``to_json``/``from_json``), keyed by its URL; hosts only add their installed packages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class RepoMetadataError(Exception):
    """A repository's metadata could not be read or is not to be trusted (unreachable, a
    checksum that does not match, truncated or malformed XML); the message is fit to show a
    person and names the repository and the file."""


class RepoFileError(ValueError):
    """A host's .repo file could not be read as tdnf reads it."""


@dataclass(frozen=True, order=True)
class Nevra:
    """One RPM package: name, epoch, version, release, architecture."""

    name: str
    epoch: int
    version: str
    release: str
    arch: str

    @property
    def evr(self) -> str:
        return (
            f"{self.epoch}:{self.version}-{self.release}" if self.epoch else f"{self.version}-{self.release}"
        )

    def __str__(self) -> str:
        """As dnf prints it: name-[epoch:]version-release.arch."""
        return f"{self.name}-{self.evr}.{self.arch}"

    def to_json(self) -> list[Any]:
        return [self.name, self.epoch, self.version, self.release, self.arch]

    @classmethod
    def from_json(cls, data: list[Any]) -> Nevra:
        name, epoch, version, release, arch = data
        return cls(str(name), int(epoch), str(version), str(release), str(arch))


@dataclass(frozen=True)
class AdvisoryPackage:
    """A package an advisory fixes: this version or newer fixes it."""

    nevra: Nevra
    reboot_suggested: bool = False


@dataclass(frozen=True)
class Advisory:
    id: str
    #: security, bugfix or enhancement (as updateinfo.xml says; "newpackage" exists too).
    type: str
    #: Critical, Important, Moderate, Low, or "" when the advisory gives none.
    severity: str
    title: str
    issued: str
    cves: tuple[str, ...]
    packages: tuple[AdvisoryPackage, ...]

    @property
    def reboot_suggested(self) -> bool:
        return any(p.reboot_suggested for p in self.packages)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "severity": self.severity,
            "title": self.title,
            "issued": self.issued,
            "cves": list(self.cves),
            "packages": [[*p.nevra.to_json(), p.reboot_suggested] for p in self.packages],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Advisory:
        return cls(
            id=data["id"],
            type=data["type"],
            severity=data["severity"],
            title=data["title"],
            issued=data["issued"],
            cves=tuple(data["cves"]),
            packages=tuple(AdvisoryPackage(Nevra.from_json(p[:5]), bool(p[5])) for p in data["packages"]),
        )


@dataclass(frozen=True)
class RepoMetadata:
    """What the portal keeps of one repository: its packages and advisories, and the
    checksum of the repomd.xml they came from (unchanged repomd.xml: nothing to read again)."""

    url: str
    revision: str
    repomd_sha256: str
    packages: tuple[Nevra, ...]
    advisories: tuple[Advisory, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "revision": self.revision,
            "repomd_sha256": self.repomd_sha256,
            "packages": [p.to_json() for p in self.packages],
            "advisories": [a.to_json() for a in self.advisories],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RepoMetadata:
        return cls(
            url=data["url"],
            revision=data["revision"],
            repomd_sha256=data["repomd_sha256"],
            packages=tuple(Nevra.from_json(p) for p in data["packages"]),
            advisories=tuple(Advisory.from_json(a) for a in data["advisories"]),
        )
