"""The Docker Registry HTTP API v2 (distribution, and every registry that speaks it).

Only what browsing and deleting need: the catalog (paged with ``n`` and the
``Link`` header), tag lists, manifests (always asking for OCI and Docker types
together: without the OCI type an OCI manifest is a 404, without any an old
schema1 conversion comes back), config blobs, delete by digest.

Names from people or from the registry are checked against the distribution
grammar before they become part of a URL, so no name can reach outside the
registry's ``/v2/`` tree (``..``, ``?``, ``#``, ``%`` never pass).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urljoin, urlsplit

from .errors import BadResponse, NotFound
from .http import Transport, origin

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
#: A config blob larger than this is not an image config.
MAX_CONFIG_BYTES = 4 * 1024 * 1024
#: Distribution's cap on ``n``.
MAX_PAGE = 1000

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-f0-9]{32,128}$")


def valid_repository(name: str) -> bool:
    return len(name) <= 255 and bool(REPOSITORY.match(name))


def valid_reference(reference: str) -> bool:
    return bool(TAG.match(reference) or DIGEST.match(reference))


def check_repository(name: str) -> str:
    if not valid_repository(name):
        raise NotFound(f"not a valid repository name: {name[:100]!r}")
    return name


def check_reference(reference: str) -> str:
    if not valid_reference(reference):
        raise NotFound(f"not a valid tag or digest: {reference[:100]!r}")
    return reference


@dataclass(frozen=True)
class Manifest:
    repository: str
    digest: str
    media_type: str
    size: int
    doc: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def is_image(self) -> bool:
        return self.media_type in IMAGE_TYPES


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class DistributionClient:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def _path(self, repository: str, kind: str, reference: str = "") -> str:
        check_repository(repository)
        suffix = f"/{quote(check_reference(reference), safe=':')}" if reference else ""
        return f"/v2/{quote(repository, safe='/')}/{kind}{suffix}"

    def ping(self) -> None:
        """The API answers (and, for token registries, a token is obtainable)."""
        self.transport.request("GET", "/v2/")

    def catalog_page(self, n: int = 100, last: str = "") -> tuple[list[str], str | None]:
        """One page of repository names and the ``last`` marker of the next page (None at the end)."""
        query = f"n={max(1, min(n, MAX_PAGE))}" + (f"&last={quote(last, safe='')}" if last else "")
        answer = self.transport.request("GET", f"/v2/_catalog?{query}")
        data = answer.json()
        names = data.get("repositories") if isinstance(data, dict) else None
        if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
            raise BadResponse("the registry's catalog is not a list of repository names")
        return names, self._next_last(answer.url, answer.headers.get("Link", ""))

    def _next_last(self, current: str, link: str) -> str | None:
        """``last`` from a ``Link: <...>; rel="next"`` (relative, as distribution sends it)."""
        match = re.search(r'<([^>]*)>\s*;\s*rel="?next"?', link)
        if not match:
            return None
        target = urljoin(current, match.group(1))
        if origin(target) != origin(current) or urlsplit(target).path != "/v2/_catalog":
            raise BadResponse("the registry's next-page link points outside its catalog")
        last = parse_qs(urlsplit(target).query).get("last", [""])[0]
        return last or None

    def repositories(self, limit: int = 100_000) -> list[str]:
        """The whole catalog (for search: distribution has none of its own), up to ``limit`` names."""
        names: list[str] = []
        last: str | None = ""
        while last is not None and len(names) < limit:
            page, following = self.catalog_page(MAX_PAGE, last)
            names += page
            if following == last or not page:
                break
            last = following
        return names[:limit]

    def tags(self, repository: str) -> list[str]:
        """Every tag (distribution 2.8 sends them unpaged; newer ones page with Link: followed)."""
        path = self._path(repository, "tags/list")
        tags: list[str] = []
        for _ in range(100):
            answer = self.transport.request("GET", path)
            data = answer.json()
            got = data.get("tags") if isinstance(data, dict) else None
            if got is None and isinstance(data, dict) and "tags" in data:
                got = []  # every tag deleted: distribution answers "tags": null
            if not isinstance(got, list) or not all(isinstance(t, str) for t in got):
                raise BadResponse(f"the tag list of {repository} is not a list of names")
            tags += got
            match = re.search(r'<([^>]*)>\s*;\s*rel="?next"?', answer.headers.get("Link", ""))
            if not match:
                break
            target = urljoin(answer.url, match.group(1))
            if origin(target) != origin(answer.url) or urlsplit(target).path != urlsplit(answer.url).path:
                raise BadResponse("the registry's next-page link points outside the tag list")
            path = urlsplit(target).path + "?" + urlsplit(target).query
        return tags

    def manifest(self, repository: str, reference: str) -> Manifest:
        answer = self.transport.request(
            "GET", self._path(repository, "manifests", reference), headers={"Accept": ACCEPT}
        )
        computed = _sha256(answer.body)
        if DIGEST.match(reference) and reference.startswith("sha256:") and computed != reference:
            raise BadResponse(f"the manifest {reference[:19]}… does not match its digest")
        header = answer.headers.get("Docker-Content-Digest", "")
        digest = header if DIGEST.match(header) else computed
        try:
            doc = json.loads(answer.body)
        except (ValueError, UnicodeDecodeError):
            doc = None
        if not isinstance(doc, dict):
            raise BadResponse(f"the manifest of {repository}:{reference} is not JSON")
        media_type = str(doc.get("mediaType") or answer.headers.get("Content-Type", "").split(";")[0])
        return Manifest(repository, digest, media_type, len(answer.body), doc)

    def digest(self, repository: str, reference: str) -> str:
        """The digest a tag points at, from a HEAD (no body)."""
        answer = self.transport.request(
            "HEAD", self._path(repository, "manifests", reference), headers={"Accept": ACCEPT}
        )
        header = answer.headers.get("Docker-Content-Digest", "")
        if not DIGEST.match(header):
            raise BadResponse(f"the registry did not say which digest {repository}:{reference} is")
        return header

    def config(self, repository: str, digest: str) -> dict[str, Any]:
        answer = self.transport.request(
            "GET", self._path(repository, "blobs", digest), max_bytes=MAX_CONFIG_BYTES
        )
        if digest.startswith("sha256:") and _sha256(answer.body) != digest:
            raise BadResponse(f"the config blob {digest[:19]}… does not match its digest")
        data = answer.json()
        if not isinstance(data, dict):
            raise BadResponse(f"the config blob {digest[:19]}… is not a JSON object")
        return data

    def delete(self, repository: str, digest: str) -> None:
        """Delete a manifest by digest: every tag on it goes with it (distribution cannot delete a tag)."""
        if not DIGEST.match(digest):
            raise NotFound("deletes go by digest")
        self.transport.request("DELETE", self._path(repository, "manifests", digest), ok=(200, 202))
