"""Repositories made in memory for the unit tests, in createrepo_c's formats, and a requests
adapter that serves them (no socket: the lab tests use real servers)."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import requests
from backports import zstd
from requests.adapters import BaseAdapter

from hosts.patches.records import Nevra

BASE = "http://repo.test/photon/5.0/updates/"

COMPRESS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "gz": (".gz", gzip.compress),
    "xz": (".xz", lzma.compress),
    "zstd": (".zst", zstd.compress),
    "bz2": (".bz2", bz2.compress),
    "none": ("", lambda data: data),
}


def primary_xml(packages: Iterable[Nevra], *, announce: int | None = None) -> bytes:
    packages = list(packages)
    body = "".join(
        f"""<package type="rpm">
  <name>{p.name}</name>
  <arch>{p.arch}</arch>
  <version epoch="{p.epoch}" ver="{p.version}" rel="{p.release}"/>
  <checksum type="sha256" pkgid="YES">{"0" * 64}</checksum>
  <summary>{p.name}</summary>
  <location href="Packages/{p.name}-{p.version}-{p.release}.{p.arch}.rpm"/>
  <format>
    <rpm:license>Apache-2.0</rpm:license>
    <rpm:provides>
      <rpm:entry name="{p.name}" flags="EQ" epoch="{p.epoch}" ver="{p.version}" rel="{p.release}"/>
    </rpm:provides>
  </format>
</package>
"""
        for p in packages
    )
    count = len(packages) if announce is None else announce
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<metadata xmlns="http://linux.duke.edu/metadata/common" '
        f'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{count}">\n{body}</metadata>\n'
    ).encode()


@dataclass
class Adv:
    id: str
    type: str
    severity: str
    packages: list[Nevra]
    cves: list[str] = field(default_factory=list)
    reboot: set[str] = field(default_factory=set)


def updateinfo_xml(advisories: Iterable[Adv]) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<updates>\n']
    for a in advisories:
        refs = "".join(
            f'<reference href="https://nvd.nist.gov/{c}" id="{c}" type="cve" title="{c}"/>' for c in a.cves
        )
        pkgs = "".join(
            f'<package name="{p.name}" version="{p.version}" release="{p.release}" epoch="{p.epoch}" '
            f'arch="{p.arch}"><filename>{p.name}.rpm</filename>'
            + ("<reboot_suggested>True</reboot_suggested>" if p.name in a.reboot else "")
            + "</package>"
            for p in a.packages
        )
        out.append(
            f'<update from="x@y" status="stable" type="{a.type}" version="1.4"><id>{a.id}</id>'
            f'<title>{a.id} title</title><issued date="2026-11-30 00:00:00"/>'
            f"<severity>{a.severity}</severity><references>{refs}</references>"
            f'<pkglist><collection short="c"><name>c</name>{pkgs}</collection></pkglist></update>\n'
        )
    out.append("</updates>\n")
    return "".join(out).encode()


def repository(
    files: dict[str, bytes], *, compression: str = "gz", checksums: dict[str, str] | None = None
) -> dict[str, bytes]:
    """{type: xml} -> {path under the base URL: bytes}, with a repomd.xml whose sha256s match
    unless ``checksums`` overrides one."""
    suffix, compress = COMPRESS[compression]
    served: dict[str, bytes] = {}
    records = []
    for kind, xml in files.items():
        data = compress(xml)
        digest = hashlib.sha256(data).hexdigest()
        href = f"repodata/{digest}-{kind}.xml{suffix}"
        served[href] = data
        records.append(
            f"""  <data type="{kind}">
    <checksum type="sha256">{(checksums or {}).get(kind, digest)}</checksum>
    <open-checksum type="sha256">{hashlib.sha256(xml).hexdigest()}</open-checksum>
    <location href="{href}"/>
    <timestamp>1796608439</timestamp>
    <size>{len(data)}</size>
    <open-size>{len(xml)}</open-size>
  </data>
"""
        )
    served["repodata/repomd.xml"] = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo" '
        'xmlns:rpm="http://linux.duke.edu/metadata/rpm">\n  <revision>1796608439</revision>\n'
        + "".join(records)
        + "</repomd>\n"
    ).encode()
    return served


class Served(BaseAdapter):
    """Answers GETs under ``base`` from a dict of paths; 404 otherwise. Counts what was asked."""

    def __init__(self, base: str, files: dict[str, bytes]) -> None:
        super().__init__()
        self.base, self.files, self.asked = base, files, []

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:  # type: ignore[override]
        url = str(request.url)
        self.asked.append(url)
        path = url[len(self.base) :] if url.startswith(self.base) else None
        response = requests.Response()
        response.url = url
        response.request = request
        data = self.files.get(path) if path is not None else None
        response.status_code = 200 if data is not None else 404
        response.raw = io.BytesIO(data or b"not found")
        return response

    def close(self) -> None:
        pass


def session(files: dict[str, bytes], base: str = BASE) -> tuple[requests.Session, Served]:
    http = requests.Session()
    adapter = Served(base, files)
    http.mount("http://repo.test/", adapter)
    return http, adapter


def nevra(text: str, arch: str = "x86_64") -> Nevra:
    """``name-[epoch:]version-release`` -> Nevra (names may hold dashes)."""
    name, version, release = text.rsplit("-", 2)
    epoch, _, version = version.rpartition(":")
    return Nevra(name, int(epoch or 0), version, release, arch)
