"""Streaming parsers for a repository's XML: repomd.xml, primary and updateinfo.

defusedxml refuses entity expansion and external references (a repository is a server the
portal does not control); ``iterparse`` with each record cleared once read keeps memory flat
for a primary of tens of thousands of packages. Malformed or truncated XML raises
:class:`xml.etree.ElementTree.ParseError`; :mod:`.repodata` turns it into the domain error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol
from xml.etree.ElementTree import Element, ParseError

from defusedxml import ElementTree as SafeET

from hosts.patches.records import Advisory, AdvisoryPackage, Nevra


class Readable(Protocol):
    """A binary stream: a spooled download, or a decompressor over one."""

    def read(self, size: int = -1, /) -> bytes: ...


REPO = "{http://linux.duke.edu/metadata/repo}"
COMMON = "{http://linux.duke.edu/metadata/common}"


@dataclass(frozen=True)
class RepomdRecord:
    """One ``<data>`` of repomd.xml: where a metadata file is and what it must hash to."""

    type: str
    href: str
    checksum_type: str
    checksum: str
    size: int | None


def parse_repomd(data: bytes) -> tuple[str, dict[str, RepomdRecord]]:
    """repomd.xml -> (revision, records by type)."""
    root = SafeET.fromstring(data)
    if root.tag != f"{REPO}repomd":
        raise ParseError(f"the root element is <{root.tag}>, not <repomd>")
    records = {}
    for node in root.iter(f"{REPO}data"):
        location = node.find(f"{REPO}location")
        checksum = node.find(f"{REPO}checksum")
        if location is None or checksum is None or not location.get("href") or not checksum.text:
            raise ParseError(f"<data type={node.get('type')!r}> has no location or checksum")
        size = node.findtext(f"{REPO}size")
        kind = node.get("type", "")
        records[kind] = RepomdRecord(
            type=kind,
            href=location.get("href", ""),
            checksum_type=checksum.get("type", ""),
            checksum=checksum.text.strip().lower(),
            size=int(size) if size and size.strip().isdigit() else None,
        )
    return root.findtext(f"{REPO}revision", "").strip(), records


def _elements(stream: Readable, tag: str) -> Iterator[Element]:
    """The root element first, then each complete ``tag`` element, cleared once the caller
    has read it (so the tree never holds more than one record)."""
    root: Element | None = None
    for event, elem in SafeET.iterparse(stream, events=("start", "end")):
        if root is None:
            root = elem
            yield root
        elif event == "end" and elem.tag == tag:
            yield elem
            root.clear()


@dataclass(frozen=True)
class Primary:
    #: Its binary packages (source packages are not installable on a host).
    packages: list[Nevra]
    #: Every <package> read, and how many ``<metadata packages=>`` announces: a mismatch is a
    #: primary cut short at a record boundary, which still parses.
    seen: int
    announced: int | None


def parse_primary(stream: Readable) -> Primary:
    elements = _elements(stream, f"{COMMON}package")
    root = next(elements, None)
    if root is None or root.tag != f"{COMMON}metadata":
        raise ParseError("not a primary.xml: the root element is not <metadata>")
    count = root.get("packages", "")
    packages = []
    seen = 0
    for elem in elements:
        seen += 1
        if elem.get("type", "rpm") != "rpm":
            continue
        arch = elem.findtext(f"{COMMON}arch", "")
        version = elem.find(f"{COMMON}version")
        name = elem.findtext(f"{COMMON}name", "")
        if version is None or not name or not arch:
            raise ParseError("a <package> has no name, arch or version")
        if arch in ("src", "nosrc"):
            continue
        packages.append(
            Nevra(name, _epoch(version.get("epoch")), version.get("ver", ""), version.get("rel", ""), arch)
        )
    return Primary(packages, seen, int(count) if count.isdigit() else None)


def parse_updateinfo(stream: Readable) -> list[Advisory]:
    elements = _elements(stream, "update")
    root = next(elements, None)
    if root is None or root.tag != "updates":
        raise ParseError("not an updateinfo.xml: the root element is not <updates>")
    return [_advisory(elem) for elem in elements]


def _advisory(update: Element) -> Advisory:
    advisory_id = (update.findtext("id") or "").strip()
    if not advisory_id:
        raise ParseError("an <update> has no <id>")
    issued = update.find("issued")
    cves = [
        ref.get("id", "")
        for ref in update.iterfind("references/reference")
        if ref.get("type") == "cve" and ref.get("id")
    ]
    # Some publishers put reboot_suggested on the update rather than on each package.
    update_reboot = _true(update.findtext("reboot_suggested"))
    packages = []
    for pkg in update.iterfind("pkglist/collection/package"):
        arch = pkg.get("arch", "")
        if arch in ("src", "nosrc"):
            continue
        nevra = Nevra(
            pkg.get("name", ""),
            _epoch(pkg.get("epoch")),
            pkg.get("version", ""),
            pkg.get("release", ""),
            arch,
        )
        if not nevra.name or not nevra.version:
            raise ParseError(f"{advisory_id}: a <package> has no name or version")
        reboot = update_reboot or _true(pkg.findtext("reboot_suggested"))
        packages.append(AdvisoryPackage(nevra, reboot))
    return Advisory(
        id=advisory_id,
        type=update.get("type", ""),
        severity=(update.findtext("severity") or "").strip(),
        title=(update.findtext("title") or "").strip(),
        issued=issued.get("date", "") if issued is not None else "",
        cves=tuple(dict.fromkeys(cves)),
        packages=tuple(packages),
    )


def _epoch(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0


def _true(text: str | None) -> bool:
    return (text or "").strip().lower() in ("true", "1", "yes")
