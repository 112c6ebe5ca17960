"""The fleet search: what a person finds among the containers, images and volumes of every host
they may see, answered from the inventory (a few queries, whatever the number of hosts).

Each word of the text must appear in one of an object's name, image, labels ("key=value") or
ports ("8080" finds a container publishing 8080), case ignored. Who sees what is the hosts'
queryset (``Host.objects.visible_to``), so another project's objects are never found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hosts.inventory import keeping, reading
from hosts.models import EngineObject, Host
from portal import access

#: A search needs this many characters: one would match nearly everything.
MIN_LENGTH = 2
#: Words after these are ignored, and each is cut to MAX_WORD characters.
MAX_WORDS = 5
MAX_WORD = 100
#: The kinds, in the order a page shows them.
KINDS = reading.KINDS


@dataclass
class Found:
    """What a search found, by kind, each list at most ``limit`` long (``more``: there were more)."""

    words: list[str]
    limit: int
    by_kind: dict[str, list[EngineObject]] = field(default_factory=dict)
    more: dict[str, bool] = field(default_factory=dict)
    #: The projects in which the person may act on the containers found (start, stop...).
    operate: frozenset[int] = frozenset()

    @property
    def containers(self) -> list[EngineObject]:
        return self.by_kind.get(reading.CONTAINER, [])

    @property
    def images(self) -> list[EngineObject]:
        return self.by_kind.get(reading.IMAGE, [])

    @property
    def volumes(self) -> list[EngineObject]:
        return self.by_kind.get(reading.VOLUME, [])

    @property
    def total(self) -> int:
        return sum(len(rows) for rows in self.by_kind.values())

    @property
    def container_rows(self) -> list[tuple[EngineObject, bool]]:
        """Each container found, and whether the person may act on it there."""
        return [(row, row.host.project_id in self.operate) for row in self.containers]


def words(text: str) -> list[str]:
    """The words to find, lowercased as the haystack is; none for a text too short to search."""
    # PostgreSQL refuses NUL in text: such a character can match nothing anyway.
    text = (text or "").replace("\x00", "").strip().lower()
    if len(text) < MIN_LENGTH:
        return []
    unique = dict.fromkeys(word[:MAX_WORD] for word in text.split())
    return list(unique)[:MAX_WORDS]


def search(user: Any, text: str, limit: int = 50) -> Found:
    """The objects ``user`` may see matching every word of ``text``: one query per kind, and one
    for the projects they may act in, however many hosts there are."""
    found = Found(words(text), limit)
    if not found.words:
        return found
    rows = EngineObject.objects.filter(host__in=Host.objects.visible_to(user)).exclude(state=keeping.REMOVED)
    for word in found.words:
        rows = rows.filter(haystack__contains=word)
    rows = rows.select_related("host").order_by("name", "host_id", "pk")
    # A query per kind, each stopping at its first limit + 1 by name (one more than shown, to
    # tell that there are more): cheaper than ranking every match of a common word at once.
    for kind in KINDS:
        page = list(rows.filter(kind=kind)[: limit + 1])
        found.by_kind[kind] = page[:limit]
        found.more[kind] = len(page) > limit
    if found.containers:
        projects = {row.host.project_id for row in found.containers}
        allowed = access.projects(user, "host.operate").filter(pk__in=projects)
        found.operate = frozenset(allowed.values_list("pk", flat=True))
    return found
