"""My work's shared parts: the row every kind of request becomes, the live topic rows
arrive on, and the registries the apps fill in their ``ready()``.

The core knows no app: an app that has requests registers a *source* (the signed-in
person's rows, newest first) and an app that has something to show beside them registers
a *panel* (template context for My work). The apps publish a row when one of their
requests moves (``publish_row``); the page's rows are then replaced in place by id.
Like Admiral's Requests view, rows are filtered as All / Running / Failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.template.loader import render_to_string

from . import live

log = logging.getLogger(__name__)

VIEWS = ("all", "running", "failed")
#: Rows of each kind on My work: the most recent, enough for a person's day.
LIMIT = 50


@dataclass
class Request:
    """One row of My work's Requests table, whatever kind of request it is."""

    kind: str
    pk: int
    title: str
    url: str
    project: str
    status: str
    status_label: str
    bucket: str  # running | failed | done
    progress: int | None
    when: datetime
    note: str = ""

    @property
    def dom_id(self) -> str:
        return f"request-{self.kind}-{self.pk}"


#: A person's requests of one kind, newest first, at most LIMIT.
Source = Callable[[Any], list[Request]]
#: Template context My work shows beside the requests (a panel of hosts, registries...).
Panel = Callable[[Any], dict[str, Any]]

SOURCES: list[Source] = []
PANELS: list[Panel] = []


def register(*, sources: tuple[Source, ...] = (), panels: tuple[Panel, ...] = ()) -> None:
    """Called from an app's ``ready()``; registering twice (tests reload apps) is harmless."""
    SOURCES.extend(s for s in sources if s not in SOURCES)
    PANELS.extend(p for p in panels if p not in PANELS)


def requests_topic(user_id: int) -> str:
    """The person's own topic (``portal.access.can_subscribe`` lets only them in)."""
    return f"requests:user:{user_id}"


def my_requests(user: Any) -> list[Request]:
    """The user's own requests of every registered kind, newest first."""
    rows = [row for source in SOURCES for row in source(user)]
    rows.sort(key=lambda r: r.when, reverse=True)
    return rows


def panels(user: Any) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for panel in PANELS:
        context.update(panel(user))
    return context


def publish_row(
    user_id: int, build: Callable[[], Request], *, key: str, pk: int, name: str, status_key: str = "status"
) -> None:
    """Push the row ``build`` makes to the person's My work, with ``{key: pk, status_key: ...}``
    as its data (a VM task's says ``state``, as its own page's events do). Never raises: news
    lost is not a request failed (``build`` runs here, so its errors are caught too, and
    logged as ``name`` not published)."""
    try:
        row = build()
        html = render_to_string("portal/work/partials/request_row.html", {"r": row})
    except Exception:
        log.warning("My work: %s not published", name, exc_info=True)
        return
    live.publish(requests_topic(user_id), html=html, data={key: pk, status_key: row.status})
