"""A project's maintenance windows, kept by its Project admins (who also approve its changes:
a window decides when an approved patch change runs), read by every member. The project
page shows them (portal.project_sections); the rules are here, for the page and the API."""

from __future__ import annotations

from datetime import time
from typing import Any

from django import forms
from django.db.models import QuerySet

from hosts.models import MaintenanceWindow
from portal import access, audit
from portal.forms import ClarityForm
from portal.models import Project
from portal.refused import Refused

WEEKDAYS = [
    ("", "Every day"),
    *[
        (str(i), name)
        for i, name in enumerate(
            ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
        )
    ],
]
#: At most this many windows a project (a week of three a day is plenty; a bound keeps the
#: next-opening computation, which reads them all, small).
MAX_WINDOWS = 21


class WindowForm(ClarityForm, forms.Form):
    weekday = forms.ChoiceField(choices=WEEKDAYS, required=False, initial="")
    start = forms.TimeField(help_text="UTC, HH:MM", widget=forms.TimeInput(attrs={"type": "time"}))
    duration_minutes = forms.IntegerField(min_value=1, max_value=1440, initial=120, label="Minutes")


def windows(user: Any, project: Project) -> QuerySet[MaintenanceWindow]:
    if not access.can(user, "change.view", project):
        raise Refused("No such project.", status=404)
    return MaintenanceWindow.objects.filter(project=project).order_by("weekday", "start", "pk")


def label(window: MaintenanceWindow) -> str:
    day = dict(WEEKDAYS)[str(window.weekday) if window.weekday is not None else ""]
    return f"{day} {window.start:%H:%M} UTC, {window.duration_minutes} min"


def add_window(
    user: Any, project: Project, *, weekday: int | None, start: time, duration_minutes: int
) -> MaintenanceWindow:
    if not access.can(user, "change.view", project):
        raise Refused("No such project.", status=404)
    if not access.can(user, "change.approve", project):
        raise Refused("Only a Project admin may set maintenance windows.", status=403)
    if weekday is not None and not 0 <= weekday <= 6:
        raise Refused(
            "A weekday is 0 (Monday) to 6 (Sunday), or none for every day.", field="weekday", status=400
        )
    if not 1 <= duration_minutes <= 1440:
        raise Refused("A window lasts 1 to 1440 minutes.", field="duration_minutes", status=400)
    if MaintenanceWindow.objects.filter(project=project).count() >= MAX_WINDOWS:
        raise Refused(f"A project has at most {MAX_WINDOWS} maintenance windows.", status=409)
    window = MaintenanceWindow.objects.create(
        project=project,
        weekday=weekday,
        start=start.replace(second=0, microsecond=0),
        duration_minutes=duration_minutes,
    )
    audit.record("patch.window_add", obj=window, project=project, actor=user, after={"window": label(window)})
    return window


def remove_window(user: Any, project: Project, window_id: int | str) -> None:
    if not access.can(user, "change.view", project):
        raise Refused("No such project.", status=404)
    if not access.can(user, "change.approve", project):
        raise Refused("Only a Project admin may set maintenance windows.", status=403)
    window = (
        MaintenanceWindow.objects.filter(project=project, pk=int(window_id)).first()
        if str(window_id).isdigit()
        else None
    )
    if window is None:
        raise Refused("No such maintenance window.", status=404)
    text = label(window)
    window.delete()
    audit.record("patch.window_remove", obj=project, project=project, actor=user, before={"window": text})


def section(user: Any, project: Project) -> dict[str, Any] | None:
    """The project page's "Maintenance windows" section, for whoever sees its changes."""
    if not access.can(user, "change.view", project):
        return None
    manage = access.can(user, "change.approve", project)
    rows = list(windows(user, project))
    return {
        "windows": [(w, label(w)) for w in rows],
        "can_manage": manage,
        "form": WindowForm() if manage else None,
    }
