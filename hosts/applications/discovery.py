"""Compose projects the portal did not deploy: started by hand on a host (``docker-compose up -d``)
and found by their ``com.docker.compose.project`` label. The Applications page lists them as
unmanaged, for the people who may see the host's project (``app.view``); a Provisioner may adopt
one (``hosts.applications.adoption``).

Cheap by design: only the Applications page (and an adoption) asks, each enabled ON host is asked
once (one ``GET /containers/json`` filtered on the label) and its answer, or its silence, is kept
in Django's cache for ``CACHE_SECONDS``. Hosts are asked in parallel and the page waits at most
``DEADLINE`` seconds in all: a host still silent then is named, never waited for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache

from hosts.applications.engine_spec import NUMBER, PROJECT, SERVICE
from hosts.fleet import engine
from hosts.models import Application, Host, HostStatus

CACHE_SECONDS = 30
#: Each engine's own timeout, and the most the page waits for all of them together.
TIMEOUT, DEADLINE = 5, 8
PARALLEL = 8
ONE_OFF = "com.docker.compose.oneoff"


@dataclass(frozen=True)
class FoundContainer:
    """One container of a Compose project as its engine listed it."""

    host_id: int
    host: str
    name: str
    service: str
    number: int
    image: str
    state: str


@dataclass(frozen=True)
class Found:
    """A Compose project found on hosts of one portal project, not one of the portal's applications."""

    name: str
    project_id: int
    project: str
    containers: tuple[FoundContainer, ...]

    @property
    def hosts(self) -> list[str]:
        return sorted({c.host for c in self.containers})

    @property
    def services(self) -> list[str]:
        return sorted({c.service for c in self.containers})

    @property
    def count(self) -> int:
        return len(self.containers)


@dataclass
class Discovery:
    found: list[Found] = field(default_factory=list)
    #: "host: why it did not answer"
    errors: list[str] = field(default_factory=list)


def _key(host: Host) -> str:
    # Its creation time too: a host removed and added again may get the same id (SQLite).
    created = host.created.timestamp() if host.created else 0
    return f"hosts:compose-projects:{host.pk}:{created}"


def _listed(item: dict[str, Any], host: Host) -> FoundContainer | None:
    labels = item.get("Labels") or {}
    if labels.get(ONE_OFF) == "True":  # a ``docker-compose run``: passing, not part of the project
        return None
    number = str(labels.get(NUMBER) or "")
    return FoundContainer(
        host_id=host.pk,
        host=host.name,
        name=str((item.get("Names") or ["/"])[0]).lstrip("/"),
        service=str(labels.get(SERVICE) or ""),
        number=int(number) if number.isdigit() and len(number) < 9 else 0,
        image=str(item.get("Image") or ""),
        state=str(item.get("State") or ""),
    )


def _ask(host: Host) -> tuple[dict[str, list[FoundContainer]], str]:
    """The host's containers by Compose project, or why the engine did not answer (one API call)."""
    try:
        sdk = engine.client_for(host, timeout=TIMEOUT)
        try:
            items = sdk.api.containers(all=True, filters={"label": PROJECT})
        finally:
            sdk.close()
    except Exception as exc:  # noqa: BLE001 - one engine down must not hide the others
        return {}, engine.describe_error(exc, host.docker_url)
    projects: dict[str, list[FoundContainer]] = {}
    for item in items:
        found = _listed(item, host)
        if found is not None:
            projects.setdefault(str((item.get("Labels") or {})[PROJECT]), []).append(found)
    return projects, ""


def containers_on(hosts: Iterable[Host], *, fresh: bool = False) -> tuple[dict[int, Any], list[str]]:
    """Per host id, its containers by Compose project; and the hosts that did not answer, in words.
    ``fresh``: ask every engine now (an adoption writes what it reads), the cache refreshed."""
    hosts = list(hosts)
    answers: dict[int, Any] = {}
    if not fresh:
        cached = cache.get_many([_key(h) for h in hosts])
        answers = {h.pk: cached[_key(h)] for h in hosts if _key(h) in cached}
    todo = [h for h in hosts if h.pk not in answers]
    if todo:
        pool = ThreadPoolExecutor(max_workers=min(PARALLEL, len(todo)))
        futures = {pool.submit(_ask, h): h for h in todo}
        done, pending = wait(futures, timeout=DEADLINE)
        # Not waited for: a thread still asking ends at its engine's own timeout.
        pool.shutdown(wait=False, cancel_futures=True)
        fetched = {futures[f].pk: f.result() for f in done}
        fetched |= {futures[f].pk: ({}, f"no answer within {DEADLINE} s") for f in pending}
        # Silence is kept too: a host that is down costs the page its timeout once a period.
        cache.set_many({_key(h): fetched[h.pk] for h in todo}, CACHE_SECONDS)
        answers.update(fetched)
    errors = [f"{h.name}: {answers[h.pk][1]}" for h in hosts if answers[h.pk][1]]
    return {pk: projects for pk, (projects, why) in answers.items() if not why}, errors


def forget(host_ids: Iterable[int]) -> None:
    """Drop what is cached for these hosts (an application was adopted or removed there)."""
    hosts = Host.objects.filter(pk__in=list(host_ids))
    with contextlib.suppress(Exception):  # a cache that is down has nothing to forget
        cache.delete_many([_key(h) for h in hosts])


def hosts_of(project_ids: Iterable[int]) -> list[Host]:
    """The hosts whose engines are asked: enabled and ON (the others are known not to answer)."""
    return list(
        Host.objects.filter(project_id__in=list(project_ids), enabled=True, status=HostStatus.ON)
        .select_related("project")
        .order_by("project__name", "name")
    )


def managed_names() -> set[str]:
    """The portal's own applications' names: their containers are the portal's, never unmanaged."""
    return set(Application.objects.exclude(state=Application.State.REMOVED).values_list("name", flat=True))


def read(project_ids: Iterable[int]) -> Discovery:
    """The unmanaged Compose projects on the hosts of these projects, and the engines that did not answer."""
    hosts = hosts_of(project_ids)
    by_host, errors = containers_on(hosts)
    managed = managed_names()
    grouped: dict[tuple[str, int], list[FoundContainer]] = {}
    for host in hosts:
        for name, containers in by_host.get(host.pk, {}).items():
            if name not in managed:
                grouped.setdefault((name, host.project_id), []).extend(containers)
    projects = {h.project_id: h.project.name for h in hosts}
    found = [
        Found(name, project_id, projects[project_id], tuple(sorted(cs, key=lambda c: (c.service, c.number))))
        for (name, project_id), cs in grouped.items()
    ]
    return Discovery(sorted(found, key=lambda f: (f.project, f.name)), errors)


def unmanaged(project_ids: Iterable[int]) -> list[Found]:
    """The Compose projects on these projects' hosts that are not the portal's applications."""
    return read(project_ids).found
