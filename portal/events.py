"""The event log's one writer: ``notify`` records what the system noticed and
publishes it live (``events:all`` for Admins, ``events:project:ID`` for members)."""

from __future__ import annotations

from django.db import models
from django.template.loader import render_to_string

from . import live
from .models import Event, Project


def notify(
    message: str,
    *,
    severity: str = Event.Severity.INFO,
    obj: models.Model | None = None,
    project: Project | int | None = None,
) -> Event:
    project_id = project.pk if isinstance(project, Project) else project
    event = Event.objects.create(
        severity=severity,
        message=message,
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
    return event
