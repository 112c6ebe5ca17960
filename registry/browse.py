"""Browsing a registry, cached: what views ask, in the fewest registry round trips.

- A registry is not asked the same thing twice within ``REGISTRY_CACHE_SECONDS``
  (Django's cache: Redis in production); ``refresh=True`` skips the cache for
  what can change (catalog, tag lists, what a tag points at) and stores the new
  answers. What is addressed by digest cannot change and stays cached longer.
- A page of tags costs one tag-list fetch plus the details of that page's tags
  only; details (manifests, per-platform manifests, config blobs) are fetched
  ``CONCURRENCY`` at a time, each distinct digest once.
- Newest first dates every tag of a repository once (``WIDE_CONCURRENCY`` at a time,
  within ``REGISTRY_DEADLINE``; Harbor's images from its artifact list, 100 a call) and
  keeps the order under the tag list's digest (``registry.tag_list`` uses it). The
  details read to date a tag are kept as a page's are, so the pages shown next, and a
  new order after a push, read only what is not cached yet.
- Cache keys are hashed (names can be long) and carry the registry's version,
  so editing a registry never serves what its old settings fetched.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache

from .clients.distribution import DistributionClient, Manifest
from .clients.errors import NotFound, RegistryError
from .clients.harbor import MAX_PAGE_SIZE, HarborClient, Page
from .clients.http import CONCURRENCY, Transport
from .images import (
    Image,
    PlatformSize,
    TagDetails,
    child_descriptors,
    compressed_size,
    config_digest,
    image_from,
    known_type,
    platform_of,
    version_key,
)
from .models import Registry

T = TypeVar("T")
R = TypeVar("R")
#: Digest-addressed content never changes: kept a day.
IMMUTABLE_SECONDS = 24 * 3600
#: A repository's newest-first order is keyed by its tag list, so a pushed or deleted tag
#: orders it anew; only a tag moved to a newer image is missed, for at most this long
#: (or until Refresh).
ORDER_SECONDS = 3600
#: Requests at once while dating every tag of a repository, or counting the tags of a
#: page of the catalog: fewer than a page's details (CONCURRENCY), as there are many more.
WIDE_CONCURRENCY = 8
#: Harbor's largest artifact page, and how many of them newest first reads (100,000 artifacts).
HARBOR_PAGE_SIZE = MAX_PAGE_SIZE
MAX_HARBOR_PAGES = 1000


def mutable_seconds() -> int:
    return int(settings.REGISTRY_CACHE_SECONDS)


def transports(registry: Registry) -> tuple[Transport, Transport]:
    """(API, registry) transports: Harbor's API takes Basic up front; /v2/ negotiates."""
    options: dict[str, Any] = {
        "username": registry.username if registry.auth != Registry.Auth.ANONYMOUS else "",
        "password": str(registry.password or "") if registry.auth != Registry.Auth.ANONYMOUS else "",
        "verify_tls": registry.verify_tls,
        "ca_pem": registry.ca_certificate,
    }
    api = Transport(registry.url, basic=bool(options["username"]), **options)
    return api, Transport(registry.url, **options)


def pull_token(registry: Registry, repository: str) -> str | None:
    """A short-lived token that lets an engine pull ``repository`` only, where the registry
    has a token service (Harbor, token-auth registries); None where it has not."""
    _, transport = transports(registry)
    try:
        return transport.pull_token(repository)
    finally:
        transport.close()


def verify(registry: Registry) -> None:
    """Ask the registry what browsing will ask first; raises RegistryError with the reason."""
    with Browser(registry, refresh=True) as browser:
        if registry.kind == Registry.Kind.HARBOR:
            browser.harbor.ping()
        else:
            browser.distribution.ping()
            browser.distribution.catalog_page(1)


def cache_key(registry: Registry, *parts: object) -> str:
    digest = hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()[:40]
    namespace = getattr(settings, "REGISTRY_CACHE_NAMESPACE", "")
    return f"registry:{namespace}{registry.cache_version}:{digest}"


def _run(function: Callable[[T], R], items: Iterable[T], workers: int = CONCURRENCY) -> list[R]:
    items = list(items)
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="registry") as pool:
        return list(pool.map(function, items))


class Browser:
    def __init__(self, registry: Registry, *, refresh: bool = False) -> None:
        self.registry = registry
        self.refresh = refresh
        self.api, self.transport = transports(registry)
        self.distribution = DistributionClient(self.transport)
        self.harbor = HarborClient(self.api, self.transport)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.close()
        self.transport.close()

    @property
    def round_trips(self) -> int:
        return self.api.round_trips + self.transport.round_trips

    # -- cache helpers ----------------------------------------------------------------------------

    def _cached(self, parts: tuple[object, ...], fetch: Callable[[], T], *, immutable: bool = False) -> T:
        key = cache_key(self.registry, *parts)
        if immutable or not self.refresh:
            hit = cache.get(key)
            if hit is not None:
                return hit
        value = fetch()
        cache.set(key, value, IMMUTABLE_SECONDS if immutable else mutable_seconds())
        return value

    def forget(self, *parts: object) -> None:
        cache.delete(cache_key(self.registry, *parts))

    # -- Docker Registry v2 -----------------------------------------------------------------------

    def catalog_page(self, n: int, last: str) -> tuple[list[str], str | None]:
        return self._cached(("catalog", n, last), lambda: self.distribution.catalog_page(n, last))

    def repositories(self) -> list[str]:
        return self._cached(("catalog-all",), self.distribution.repositories)

    def tags(self, repository: str) -> list[str]:
        return self._cached(("tags", repository), lambda: self.distribution.tags(repository))

    def listed(self, repository: str) -> bool:
        """Whether the catalog still names ``repository`` (it does, after its tags are deleted,
        until the registry is garbage-collected); False where the catalog cannot be read."""
        try:
            return repository in self.repositories()
        except RegistryError:
            return False

    def tag_counts(self, repositories: list[str]) -> dict[str, int | None]:
        """Tags per repository (a tag list each, ``WIDE_CONCURRENCY`` at a time, cached as
        ``tags`` is); 0 for a repository whose tags are gone, None where the list failed."""

        def count(repository: str) -> int | None:
            try:
                return len(self.tags(repository))
            except NotFound:
                return 0
            except RegistryError:
                return None

        return dict(zip(repositories, _run(count, repositories, WIDE_CONCURRENCY), strict=True))

    # -- newest first -----------------------------------------------------------------------------

    def _order_key(self, repository: str, tags: list[str]) -> tuple[object, ...]:
        listing = hashlib.sha256("\n".join(sorted(tags)).encode()).hexdigest()
        return ("newest", repository, listing)

    def cached_newest_order(self, repository: str, tags: list[str]) -> NewestOrder | None:
        """The newest-first order if it was computed for this very tag list, else None."""
        if self.refresh:
            return None
        found = cache.get(cache_key(self.registry, *self._order_key(repository, tags)))
        return found if isinstance(found, NewestOrder) else None

    def newest_order(self, repository: str, tags: list[str]) -> NewestOrder:
        """``tags`` by creation date, newest first, computed once and cached for every page.

        Dating a tag takes its manifest and config (a platform's, for an index), so this
        reads every tag, ``WIDE_CONCURRENCY`` at a time, within REGISTRY_DEADLINE as a whole:
        tags not dated by then come last, and such a partial order is kept only briefly.
        """
        cached = self.cached_newest_order(repository, tags)
        if cached is not None:
            return cached
        budget = float(settings.REGISTRY_DEADLINE)
        started = time.monotonic()
        dates: dict[str, str] = {}
        if self.registry.kind == Registry.Kind.HARBOR:
            dates = self._harbor_dates(repository, tags, started + budget)
        rest = [tag for tag in tags if tag not in dates]
        if rest:
            left = max(0.0, budget - (time.monotonic() - started))
            dates.update(self._creation_dates(repository, rest, left))
        ordered = sorted(tags, key=lambda t: (dates.get(t, ""), version_key(t)), reverse=True)
        undated = sum(1 for t in tags if not dates.get(t))
        order = NewestOrder(ordered, undated, complete=len(dates) == len(tags))
        lifetime = ORDER_SECONDS if order.complete else mutable_seconds()
        cache.set(cache_key(self.registry, *self._order_key(repository, tags)), order, lifetime)
        return order

    def _harbor_dates(self, repository: str, tags: list[str], deadline: float) -> dict[str, str]:
        """Dates from Harbor's artifact list, which carries an image's config ``created`` in
        its ``extra_attrs``: a call per 100 artifacts instead of two reads per tag.

        An index has no such date, nor has a tag the list does not name: those are left to
        the registry's own reads, as is every tag if the API fails or ``deadline`` (a
        ``time.monotonic()``) passes.
        """
        wanted = set(tags)
        dates: dict[str, str] = {}
        try:
            for page in range(1, MAX_HARBOR_PAGES + 1):
                listed = self.harbor_artifacts(repository, page, HARBOR_PAGE_SIZE)
                for artifact in listed.items:
                    extra = artifact.get("extra_attrs")
                    created = str(extra.get("created") or "") if isinstance(extra, dict) else ""
                    named = artifact.get("tags")
                    for tag in named if isinstance(named, list) else []:
                        name = tag.get("name") if isinstance(tag, dict) else None
                        if created and isinstance(name, str) and name in wanted:
                            dates[name] = created
                if not listed.items or page * HARBOR_PAGE_SIZE >= listed.total or time.monotonic() > deadline:
                    break
        except RegistryError:
            pass
        return dates

    def _creation_dates(self, repository: str, tags: list[str], budget: float) -> dict[str, str]:
        """Each tag's creation date ("" where it has none or failed); tags still unread when
        ``budget`` seconds are up are left out.

        A date is read with the tag's details (manifest, platforms' manifests, configs) and
        those are kept as ``tag_details`` keeps them: the page shown next reads nothing again,
        and tags whose details are already cached cost nothing here.
        """
        keys = {tag: cache_key(self.registry, "tag", repository, tag) for tag in tags}
        known: dict[str, TagDetails] = {}
        if not self.refresh:
            hits = cache.get_many(list(keys.values()))
            known = {tag: hits[key] for tag, key in keys.items() if key in hits}
        missing = [tag for tag in tags if tag not in known]

        def details(tag: str) -> TagDetails:
            return self._gather(repository, [tag])[tag]

        fetched: dict[str, TagDetails] = {}
        pool = ThreadPoolExecutor(max_workers=WIDE_CONCURRENCY, thread_name_prefix="registry-dates")
        try:
            jobs = {pool.submit(details, tag): tag for tag in missing}
            done, _ = wait(jobs, timeout=budget)
            fetched = {jobs[job]: job.result() for job in done}
        finally:
            # What has not started is dropped; what is under way ends within its own deadline.
            pool.shutdown(wait=False, cancel_futures=True)
        # A tag that failed is asked again next time, not remembered as failed.
        cache.set_many({keys[t]: d for t, d in fetched.items() if not d.error}, mutable_seconds())
        return {tag: found.created for tag, found in {**known, **fetched}.items()}

    def tag_details(self, repository: str, tags: list[str]) -> dict[str, TagDetails]:
        """Details of ``tags``: from the cache where it has them, the rest fetched concurrently."""
        keys = {tag: cache_key(self.registry, "tag", repository, tag) for tag in tags}
        found: dict[str, TagDetails] = {}
        if not self.refresh:
            hits = cache.get_many(list(keys.values()))
            found = {tag: hits[key] for tag, key in keys.items() if key in hits}
        missing = [tag for tag in tags if tag not in found]
        if missing:
            fetched = self._gather(repository, missing)
            # A tag that failed is asked again next time, not remembered as failed.
            good = {keys[tag]: details for tag, details in fetched.items() if not details.error}
            cache.set_many(good, mutable_seconds())
            found.update(fetched)
        return {tag: found[tag] for tag in tags}

    def tag(self, repository: str, tag: str) -> TagDetails:
        return self.tag_details(repository, [tag])[tag]

    def _manifests(self, repository: str, digests: list[str]) -> dict[str, Manifest | RegistryError]:
        return self._by_digest(
            "manifest", digests, lambda d: self.distribution.manifest(repository, d), Manifest
        )

    def _configs(self, repository: str, digests: list[str]) -> dict[str, dict[str, Any] | RegistryError]:
        return self._by_digest("config", digests, lambda d: self.distribution.config(repository, d), dict)

    def _by_digest(
        self, kind: str, digests: list[str], fetch: Callable[[str], R], keep: type
    ) -> dict[str, R | RegistryError]:
        """Content-addressed objects: from the cache, the rest fetched concurrently and
        cached for good (a digest's content never changes); failures are not cached."""
        keys = {digest: cache_key(self.registry, kind, digest) for digest in digests}
        hits = cache.get_many(list(keys.values()))
        out: dict[str, R | RegistryError] = {d: hits[k] for d, k in keys.items() if k in hits}
        missing = [d for d in digests if d not in out]
        fetched = _run(lambda d: _attempt(lambda: fetch(d)), missing)
        out.update(zip(missing, fetched, strict=True))
        cache.set_many(
            {keys[d]: v for d, v in zip(missing, fetched, strict=True) if isinstance(v, keep)},
            IMMUTABLE_SECONDS,
        )
        return out

    def _gather(self, repository: str, tags: list[str]) -> dict[str, TagDetails]:
        """Three concurrent rounds (tag manifests, platform manifests, configs), each digest once."""
        tops = dict(
            zip(
                tags,
                _run(lambda t: _attempt(lambda: self.distribution.manifest(repository, t)), tags),
                strict=True,
            )
        )
        child_digests = sorted(
            {
                entry["digest"]
                for top in tops.values()
                if isinstance(top, Manifest) and top.is_index
                for entry in child_descriptors(top)
            }
        )
        children = self._manifests(repository, child_digests)
        images = [m for m in [*tops.values(), *children.values()] if isinstance(m, Manifest) and m.is_image]
        configs = self._configs(repository, sorted({config_digest(m) for m in images} - {""}))

        def image(manifest: Manifest, platform: dict[str, Any] | None = None) -> Image:
            config = configs.get(config_digest(manifest))
            return image_from(manifest, config if isinstance(config, dict) else None, platform)

        out: dict[str, TagDetails] = {}
        for tag, top in tops.items():
            if isinstance(top, RegistryError):
                out[tag] = TagDetails(repository, tag, error=str(top), error_kind=type(top).__name__)
                continue
            details = TagDetails(
                repository,
                tag,
                digest=top.digest,
                media_type=top.media_type,
                known=known_type(top.media_type),
                manifest_size=top.size,
                annotations=_annotations(top),
            )
            if top.is_image:
                details.images = [image(top)]
            elif top.is_index:
                for entry in child_descriptors(top):
                    child = children.get(entry["digest"])
                    platform = found if isinstance(found := entry.get("platform"), dict) else {}
                    if isinstance(child, Manifest) and child.is_image:
                        details.images.append(image(child, platform))
                    else:
                        failed = Image(str(entry["digest"]), str(entry.get("mediaType", "")))
                        failed.os, failed.architecture = (
                            str(platform.get("os", "")),
                            str(platform.get("architecture", "")),
                        )
                        failed.error = (
                            str(child) if isinstance(child, RegistryError) else "not an image manifest"
                        )
                        details.images.append(failed)
            out[tag] = details
        return out

    def platform_sizes(self, repository: str, digests: list[str]) -> dict[str, list[PlatformSize]]:
        """Compressed size per platform of the manifests ``digests`` (Harbor's artifact size
        adds an index's platforms together); from manifests only, cached for good."""
        tops = self._manifests(repository, digests)
        children = self._manifests(
            repository,
            sorted(
                {
                    entry["digest"]
                    for top in tops.values()
                    if isinstance(top, Manifest) and top.is_index
                    for entry in child_descriptors(top)
                }
            ),
        )
        out: dict[str, list[PlatformSize]] = {}
        for digest, top in tops.items():
            if isinstance(top, Manifest) and top.is_image:
                out[digest] = [PlatformSize("", compressed_size(top))]
            elif isinstance(top, Manifest) and top.is_index:
                out[digest] = [
                    PlatformSize(platform_of(entry), compressed_size(child))
                    for entry in child_descriptors(top)
                    if isinstance(child := children.get(entry["digest"]), Manifest) and child.is_image
                ]
        return out

    def tag_digests(self, repository: str) -> dict[str, str]:
        """Every tag's digest (a HEAD each, concurrently): to know which tags share one."""

        def fetch() -> dict[str, str]:
            tags = self.tags(repository)
            digests = _run(lambda t: _attempt(lambda: self.distribution.digest(repository, t)), tags)
            return {t: d for t, d in zip(tags, digests, strict=True) if isinstance(d, str)}

        return self._cached(("digests", repository), fetch)

    def tags_on(self, repository: str, digest: str) -> list[str]:
        return sorted(tag for tag, d in self.tag_digests(repository).items() if d == digest)

    def forget_repository(self, repository: str, tags: Iterable[str] = ()) -> None:
        self.forget("tags", repository)
        self.forget("digests", repository)
        for tag in tags:
            self.forget("tag", repository, tag)

    # -- Harbor -----------------------------------------------------------------------------------

    def harbor_projects(self, page: int, size: int, name: str = "") -> Page:
        return self._cached(("h-projects", page, size, name), lambda: self.harbor.projects(page, size, name))

    def harbor_repositories(self, project: str, page: int, size: int, name: str = "") -> Page:
        return self._cached(
            ("h-repositories", project, page, size, name),
            lambda: self.harbor.repositories(project, page, size, name),
        )

    def harbor_artifacts(self, repository: str, page: int, size: int) -> Page:
        return self._cached(
            ("h-artifacts", repository, page, size), lambda: self.harbor.artifacts(repository, page, size)
        )

    def harbor_artifact(self, repository: str, reference: str) -> dict[str, Any]:
        return self._cached(
            ("h-artifact", repository, reference), lambda: self.harbor.artifact(repository, reference)
        )

    def forget_harbor_repository(self, repository: str, references: Iterable[str] = ()) -> None:
        # Paged artifact lists of the repository: the first pages are the ones people see.
        for page in range(1, 11):
            for size in (25, 50, 100):
                self.forget("h-artifacts", repository, page, size)
        for reference in references:
            self.forget("h-artifact", repository, reference)
            self.forget("tag", repository, reference)


@dataclass(frozen=True)
class NewestOrder:
    """A repository's tags, newest first; ``undated`` of them had no date (listed last)."""

    tags: list[str]
    undated: int = 0
    complete: bool = True


def _annotations(manifest: Manifest) -> dict[str, str]:
    value = manifest.doc.get("annotations")
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _attempt(call: Callable[[], T]) -> T | RegistryError:
    """A detail fetch that fails is shown on its row, not raised over the whole page."""
    try:
        return call()
    except RegistryError as exc:
        return exc
