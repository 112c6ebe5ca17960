"""A repository's metadata, read by the portal itself: repomd.xml, then primary and
updateinfo, each checked against the checksum repomd.xml gives before a byte is parsed.

Any failure (unreachable, a checksum that does not match, a compression that is truncated,
XML that ends early or does not parse, fewer packages than primary announces) raises
:class:`~hosts.patches.records.RepoMetadataError` with the repository and file named, and
nothing is returned: a caller keeping a cache keeps what it had (:func:`refresh`).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import tempfile
import zlib
from collections.abc import Callable, MutableMapping
from typing import IO, Any
from xml.etree.ElementTree import ParseError

import requests
from backports import zstd
from defusedxml import DefusedXmlException

from hosts.patches import metadata_xml
from hosts.patches.records import RepoMetadata, RepoMetadataError

TIMEOUT = 30.0
#: repomd.xml is a few kilobytes; a primary of Photon's largest repository tens of megabytes.
MAX_REPOMD = 4 * 1024 * 1024
MAX_FILE = 1024 * 1024 * 1024
CHUNK = 1024 * 1024
CHECKSUMS = {"sha256": "sha256", "sha512": "sha512", "sha384": "sha384", "sha224": "sha224"}
#: Magic bytes of the compressions createrepo_c writes (zstd is its default since 1.0).
MAGIC: list[tuple[bytes, str]] = [
    (b"\x1f\x8b", "gz"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bz2"),
]
DECOMPRESS_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error, zstd.ZstdError, ValueError)


def fetch_repository(
    url: str, *, previous: RepoMetadata | None = None, session: requests.Session | None = None
) -> RepoMetadata:
    """The metadata of the repository at ``url`` (its baseurl, repodata/ below it).

    ``previous``: the cached metadata; when repomd.xml has not changed it is returned as is,
    so a refresh of an unchanged repository reads one small file."""
    base = url if url.endswith("/") else url + "/"
    http = session or requests.Session()
    repomd_url = base + "repodata/repomd.xml"
    with _download(http, repomd_url, MAX_REPOMD) as body:
        repomd = body.read()
    repomd_sha256 = hashlib.sha256(repomd).hexdigest()
    if previous is not None and previous.url == base and previous.repomd_sha256 == repomd_sha256:
        return previous
    try:
        revision, records = metadata_xml.parse_repomd(repomd)
    except ParseError as exc:
        raise RepoMetadataError(f"{repomd_url} is not a valid repomd.xml: {exc}") from None
    except DefusedXmlException as exc:
        raise RepoMetadataError(
            f"{repomd_url}: refused, it declares entities or external references ({type(exc).__name__})"
        ) from None
    if "primary" not in records:
        raise RepoMetadataError(f"{repomd_url} names no primary metadata")
    primary: metadata_xml.Primary = _read(http, base, records["primary"], metadata_xml.parse_primary)
    if primary.announced is not None and primary.announced != primary.seen:
        raise RepoMetadataError(
            f"{base}{records['primary'].href} lists {primary.seen} packages but announces "
            f"{primary.announced}; nothing was changed"
        )
    advisories = []
    if "updateinfo" in records:
        advisories = _read(http, base, records["updateinfo"], metadata_xml.parse_updateinfo)
    return RepoMetadata(
        url=base,
        revision=revision,
        repomd_sha256=repomd_sha256,
        packages=tuple(primary.packages),
        advisories=tuple(advisories),
    )


def refresh(cache: MutableMapping[str, dict[str, Any]], url: str, **options: Any) -> RepoMetadata:
    """Read the repository at ``url`` again and store it in ``cache`` (JSON per repository,
    keyed by URL) only once all of it was read and checked: on any error the cache keeps
    what it had and the error is raised."""
    base = url if url.endswith("/") else url + "/"
    cached = cache.get(base)
    previous = RepoMetadata.from_json(cached) if cached else None
    metadata = fetch_repository(base, previous=previous, **options)
    if metadata is not previous:
        cache[base] = metadata.to_json()
    return metadata


def _read(
    http: requests.Session,
    base: str,
    record: metadata_xml.RepomdRecord,
    parse: Callable[[metadata_xml.Readable], Any],
) -> Any:
    url = base + record.href
    algorithm = CHECKSUMS.get(record.checksum_type)
    if algorithm is None:
        raise RepoMetadataError(
            f"{url}: repomd.xml gives a {record.checksum_type or 'missing'} checksum; "
            "the portal accepts only SHA-2 (sha256 or stronger)"
        )
    with tempfile.TemporaryFile() as spool:
        digest = hashlib.new(algorithm)
        with _download(http, url, MAX_FILE) as body:
            while chunk := body.read(CHUNK):
                digest.update(chunk)
                spool.write(chunk)
        if digest.hexdigest() != record.checksum:
            raise RepoMetadataError(
                f"{url}: checksum mismatch ({record.checksum_type} is {digest.hexdigest()}, "
                f"repomd.xml says {record.checksum}); the repository is being updated or was "
                "tampered with: nothing was changed"
            )
        spool.seek(0)
        stream = _decompressed(spool)
        try:
            return parse(stream)
        except ParseError as exc:
            raise RepoMetadataError(
                f"{url}: the {record.type} XML is truncated or malformed ({exc}); nothing was changed"
            ) from None
        except DefusedXmlException as exc:
            # Entity declarations or external references: an XML bomb or a probe, never metadata.
            raise RepoMetadataError(
                f"{url}: refused, the {record.type} XML declares entities or external references "
                f"({type(exc).__name__}); nothing was changed"
            ) from None
        except DECOMPRESS_ERRORS as exc:
            raise RepoMetadataError(
                f"{url}: the compressed {record.type} data is truncated or corrupt ({exc}); "
                "nothing was changed"
            ) from None


def _decompressed(spool: IO[bytes]) -> metadata_xml.Readable:
    head = spool.read(8)
    spool.seek(0)
    kind = next((name for magic, name in MAGIC if head.startswith(magic)), "")
    if kind == "gz":
        return gzip.GzipFile(fileobj=spool, mode="rb")
    if kind == "xz":
        return lzma.LZMAFile(spool, mode="rb")
    if kind == "zstd":
        return zstd.ZstdFile(spool, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(spool, mode="rb")
    return spool


class _Body:
    """A streamed response read with a size cap, closed with the ``with``."""

    def __init__(self, response: requests.Response, url: str, limit: int) -> None:
        self.response, self.url, self.limit, self.seen = response, url, limit, 0
        self.chunks = response.iter_content(CHUNK)

    def read(self, size: int = -1) -> bytes:
        """The next chunk (``size`` >= 0) or all that is left; b"" at the end."""
        out = bytearray()
        try:
            for chunk in self.chunks:
                self.seen += len(chunk)
                if self.seen > self.limit:
                    raise RepoMetadataError(f"{self.url} is larger than {self.limit // (1024 * 1024)} MiB")
                out += chunk
                if size >= 0:
                    break
        except requests.RequestException as exc:
            raise RepoMetadataError(f"{self.url}: the download broke off: {exc}") from None
        return bytes(out)

    def __enter__(self) -> _Body:
        return self

    def __exit__(self, *exc: object) -> None:
        self.response.close()


def _download(http: requests.Session, url: str, limit: int) -> _Body:
    try:
        response = http.get(url, stream=True, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise RepoMetadataError(f"{url} could not be read: {exc}") from None
    if response.status_code != 200:
        response.close()
        raise RepoMetadataError(f"{url} answered HTTP {response.status_code}")
    return _Body(response, url, limit)
