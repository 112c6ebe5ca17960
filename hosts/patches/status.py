"""Refreshing hosts' patch status: read each host over SSH (rpm -qa and its .repo files), read
each of their repositories once through the cache, compute what applies, and store it whole.

A refresh of several hosts reads each distinct repository once (its repomd.xml; the rest only
when that changed), whatever the number of hosts using it. A host whose read failed, or one of
whose enabled repositories could not be read, keeps its last good status; the error is recorded
beside it, and the page shows both. Nothing is half written: a host's status, its pending
advisories and its CVEs change in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import asyncssh
import requests
from django.db import transaction
from django.utils import timezone

from hosts import ssh
from hosts.fleet import status as fleet_status
from hosts.models import Host, HostPatchStatus, PendingAdvisory, PendingCve
from hosts.patches import cache, installed, outcome
from hosts.patches.applicability import HostApplicability, RepoIndex, applicability
from hosts.patches.installed import HostPackages, InstalledError
from hosts.patches.records import RepoFileError, RepoMetadata, RepoMetadataError
from portal import live

log = logging.getLogger(__name__)

Reader = Callable[[ssh.Access], Awaitable[HostPackages]]
#: What reading a host can fail with; each message is fit to show a person.
READ_ERRORS = (ssh.SSHError, InstalledError, RepoFileError, asyncssh.Error, OSError, asyncio.TimeoutError)


async def read_over_ssh(access: ssh.Access) -> HostPackages:
    async with ssh.connect(access) as conn:
        return await installed.read_host(conn)


def http_session() -> requests.Session:
    """The HTTP session of one refresh: its connections to a repository server are reused."""
    return requests.Session()


@dataclass(frozen=True)
class Refreshed:
    """How one host's refresh went: ``error`` empty when its status was stored."""

    host_id: int
    error: str = ""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "the host did not answer in time"
    return str(exc) or type(exc).__name__


async def _read_all(accesses: Sequence[ssh.Access], reader: Reader) -> list[HostPackages | str]:
    async def one(access: ssh.Access) -> HostPackages | str:
        try:
            return await reader(access)
        except READ_ERRORS as exc:
            return f"Reading the host's packages failed: {_describe(exc)}"

    return await ssh.bounded(accesses, one)


def refresh_hosts(
    hosts: Iterable[Host], *, reader: Reader | None = None, session: requests.Session | None = None
) -> list[Refreshed]:
    """Refresh the patch status of ``hosts`` (loaded with their SSH access); one result each."""
    hosts = list(hosts)
    if not hosts:
        return []
    read = asyncio.run(_read_all([ssh.Access.of(h) for h in hosts], reader or read_over_ssh))
    http = session or http_session()
    repos: dict[str, RepoMetadata | str] = {}
    for packages in read:
        if isinstance(packages, HostPackages):
            for url in installed.enabled_urls(packages):
                base = cache.base_url(url)
                if base not in repos:
                    repos[base] = _repository(base, http)
    if session is None:
        http.close()
    indexes: dict[tuple[str, ...], RepoIndex] = {}
    done = []
    for host, packages in zip(hosts, read, strict=True):
        if isinstance(packages, str):
            done.append(_failed(host, packages))
            continue
        urls = tuple(dict.fromkeys(cache.base_url(u) for u in installed.enabled_urls(packages)))
        broken = [f"{url}: {repos[url]}" for url in urls if isinstance(repos[url], str)]
        if broken:
            done.append(_failed(host, "A repository could not be read: " + "; ".join(broken)))
            continue
        if urls not in indexes:
            # Hosts with the same repositories share one index (most of a fleet does).
            indexes[urls] = RepoIndex(m for m in (repos[u] for u in urls) if isinstance(m, RepoMetadata))
        done.append(_stored(host, packages, applicability(packages.installed, indexes[urls])))
    return done


def _repository(url: str, session: requests.Session) -> RepoMetadata | str:
    try:
        return cache.refresh_repository(url, session=session)
    except RepoMetadataError as exc:
        # The message names the repository and the file already.
        return str(exc)


def _stored(host: Host, packages: HostPackages, result: HostApplicability) -> Refreshed:
    now = timezone.now()
    status = outcome.status_fields(packages, result)
    with transaction.atomic():
        HostPatchStatus.objects.update_or_create(
            host=host, defaults={**status, "read_at": now, "tried_at": now, "last_error": ""}
        )
        advisories, cves = outcome.pending_rows(host, packages, result)
        PendingAdvisory.objects.filter(host=host).delete()
        PendingCve.objects.filter(host=host).delete()
        PendingAdvisory.objects.bulk_create(advisories)
        PendingCve.objects.bulk_create(cves)
        transaction.on_commit(lambda: publish(host))
    return Refreshed(host.pk)


def _failed(host: Host, error: str) -> Refreshed:
    """Record why the refresh failed beside the last good status, which stays as it was."""
    error = error[:2000]
    with transaction.atomic():
        row, created = HostPatchStatus.objects.select_for_update().get_or_create(
            host=host, defaults={"last_error": error, "tried_at": timezone.now()}
        )
        if not created:
            row.last_error, row.tried_at = error, timezone.now()
            row.save(update_fields=["last_error", "tried_at"])
        transaction.on_commit(lambda: publish(host))
    log.info("patch status of %s not refreshed: %s", host.name, error)
    return Refreshed(host.pk, error)


def patches_topic(host: Host) -> str:
    """News that a host's patch status changed: its page reads its Updates card again."""
    return f"{fleet_status.host_topic(host)}:patches"


def counts(found: HostPatchStatus | None, host_id: int) -> dict[str, object]:
    """The news's data: the counts the fleet's column shows (for scripts and tests)."""
    if found is None:
        return {"host": host_id}
    return {
        "host": host_id,
        "read": found.read_at is not None,
        "security": dict(found.by_severity()),
        "updates": found.pending_updates,
        "error": found.last_error,
    }


def publish(host: Host) -> None:
    """The host's row (with its advisory counts) to the fleet pages, its card to its page."""
    try:
        # Read again: the instance the refresh had may hold an earlier status in its cache.
        fresh = Host.objects.select_related("project").filter(pk=host.pk).first()
        if fresh is None:
            return
        fleet_status.publish(fresh)  # loads the row's patch_status (hosts.fleet.rows)
        live.publish(patches_topic(fresh), data=counts(getattr(fresh, "patch_status", None), fresh.pk))
    except Exception:
        # Stored is what counts; a page that missed the news shows it when next read.
        log.warning("patch status of %s not published", host.name, exc_info=True)
