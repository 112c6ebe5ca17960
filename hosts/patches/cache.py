"""The repositories' metadata cache, in the database (hosts.models.RepoCache), as the mapping
:func:`hosts.patches.repodata.refresh` keeps: one row per repository URL, shared by every host
whose repositories include it, written only once a read was whole and checked."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import requests
from django.utils import timezone

from hosts.models import RepoCache
from hosts.patches import repodata
from hosts.patches.records import RepoMetadata, RepoMetadataError


def base_url(url: str) -> str:
    """The form repositories are keyed by: with its trailing slash."""
    return url if url.endswith("/") else url + "/"


class DatabaseCache(MutableMapping[str, dict[str, Any]]):
    """URL -> RepoMetadata JSON, over RepoCache rows (a row without metadata is not an entry:
    it only records a repository that never answered well)."""

    def __getitem__(self, url: str) -> dict[str, Any]:
        row = RepoCache.objects.filter(url=url).first()
        data = row.metadata_json() if row is not None else None
        if data is None:
            raise KeyError(url)
        return data

    def __setitem__(self, url: str, data: dict[str, Any]) -> None:
        row = RepoCache.objects.filter(url=url).first() or RepoCache(url=url)
        row.set_metadata_json(data)
        row.fetched_at = row.checked_at = timezone.now()
        row.last_error = ""
        row.save()

    def __delitem__(self, url: str) -> None:
        deleted, _ = RepoCache.objects.filter(url=url).delete()
        if not deleted:
            raise KeyError(url)

    def __iter__(self) -> Iterator[str]:
        return iter(RepoCache.objects.exclude(metadata=b"").values_list("url", flat=True))

    def __len__(self) -> int:
        return RepoCache.objects.exclude(metadata=b"").count()


def refresh_repository(url: str, *, session: requests.Session | None = None) -> RepoMetadata:
    """Read the repository at ``url`` again through the cache (an unchanged repomd.xml: nothing
    else is downloaded). A failure is recorded on its row, the metadata kept, and raised."""
    base = base_url(url)
    try:
        metadata = repodata.refresh(DatabaseCache(), base, session=session)
    except RepoMetadataError as exc:
        RepoCache.objects.update_or_create(
            url=base, defaults={"last_error": str(exc)[:2000], "checked_at": timezone.now()}
        )
        raise
    RepoCache.objects.filter(url=base).update(checked_at=timezone.now(), last_error="")
    return metadata
