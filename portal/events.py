"""The event log's one writer: ``notify`` records what the system noticed and
publishes it live (``events:all`` for Admins, ``events:project:ID`` for members).

Once written, an event is announced with the ``event_recorded`` signal (sender: the
Event class, ``event``: the row): the alerts app listens without the core knowing it.
A repeat that ``notify_repeated`` folds into an earlier event is not announced again:
it is the same event, already alerted on."""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.db import models
from django.dispatch import Signal
from django.template.loader import render_to_string
from django.utils import timezone

from . import live
from .models import Event, Project

#: Sent after an event row is written, inside the writer's transaction (listeners that
#: act on it wait for the commit themselves). Arguments: ``event``.
event_recorded = Signal()


def notify(
    message: str,
    *,
    severity: str = Event.Severity.INFO,
    obj: models.Model | None = None,
    project: Project | int | None = None,
    kind: str = "",
) -> Event:
    project_id = project.pk if isinstance(project, Project) else project
    event = Event.objects.create(
        severity=severity,
        message=message,
        kind=kind,
        project_id=project_id,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
    )
    html = render_to_string("portal/partials/event_row.html", {"event": event})
    data = {"id": event.pk, "severity": event.severity, "message": event.message, "object": event.object_repr}
    live.publish("events:all", html=html, data=data)
    if project_id:
        live.publish(f"events:project:{project_id}", html=html, data=data)
    event_recorded.send(sender=Event, event=event)
    return event


def notify_repeated(
    key: str,
    message: str,
    *,
    severity: str = Event.Severity.WARNING,
    obj: models.Model | None = None,
    project: Project | int | None = None,
    kind: str = "",
) -> Event:
    """One event per ``key`` per REFUSAL_EVENT_WINDOW, however often it happens: the
    first writes ``message``; each repeat updates that event's text with the count
    and its latest message, so a flood of anonymous refusals costs one row, not one each."""
    cache_key = f"events:repeated:{hashlib.sha256(key.encode()).hexdigest()}"
    seen = cache.get(cache_key)
    if seen is not None:
        event_id, at, count, until = seen
        count += 1
        since = timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S %Z")
        # pk and time: a pruned event's id may be reused by another row.
        if Event.objects.filter(pk=event_id, at=at).update(message=f"{count} times since {since}: {message}"):
            cache.set(cache_key, (event_id, at, count, until), timeout=max(1, int(until - time.time())))
            return Event.objects.get(pk=event_id)
    event = notify(message, severity=severity, obj=obj, project=project, kind=kind)
    until = time.time() + settings.REFUSAL_EVENT_WINDOW
    entry = (event.pk, event.at, 1, until)
    if seen is None:
        # add, not set: of two first callers racing, the later one's event simply stands alone.
        cache.add(cache_key, entry, timeout=settings.REFUSAL_EVENT_WINDOW)
    else:  # what the cache pointed at is gone (pruned, or rolled back): point at this one
        cache.set(cache_key, entry, timeout=settings.REFUSAL_EVENT_WINDOW)
    return event
