"""The audit trail and the event log: filterable, paged, live, the trail exportable as CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from . import access
from .filters import DateRangeForm, day_end, day_start, paginate
from .models import AuditEntry, Event

CSV_COLUMNS = [
    "at",
    "actor",
    "address",
    "action",
    "project",
    "object_type",
    "object_id",
    "object",
    "before",
    "after",
]


class AuditFilterForm(DateRangeForm):
    person = forms.CharField(
        required=False, widget=forms.TextInput(attrs={"class": "clr-input", "placeholder": "user"})
    )
    action = forms.CharField(
        required=False, widget=forms.TextInput(attrs={"class": "clr-input", "placeholder": "auth.login"})
    )
    object = forms.CharField(
        required=False, widget=forms.TextInput(attrs={"class": "clr-input", "placeholder": "name"})
    )


def visible_audit(user: access.User) -> tuple[QuerySet[AuditEntry], list[str]]:
    """What ``user`` may see of the trail, and the live topics that extend it."""
    entries = AuditEntry.objects.all()
    if access.is_admin(user):
        return entries, ["audit:all"]
    project_ids = list(access.projects(user, "audit.view").values_list("pk", flat=True))
    in_projects = Q(project_id__in=project_ids)
    scope = access.token_scope(user)
    if scope is not None and scope.project_id is not None:
        # A project's token sees that project's trail only, not its user's doings elsewhere.
        return entries.filter(in_projects), [f"audit:project:{pk}" for pk in project_ids]
    topics = [f"audit:user:{user.pk}"] + [f"audit:project:{pk}" for pk in project_ids]
    return entries.filter(Q(actor_id=user.pk) | in_projects), topics


AUDIT_FILTERS = ("person", "action", "object", "since", "until")


def narrow_audit(entries: QuerySet[AuditEntry], data: dict[str, Any]) -> QuerySet[AuditEntry]:
    """Apply an AuditFilterForm's cleaned data: the one filter of the trail, for the page,
    the CSV export, the API and `manage.py export_audit` alike."""
    if data.get("person"):
        entries = entries.filter(actor_name__icontains=data["person"])
    if data.get("action"):
        entries = entries.filter(action__startswith=data["action"])
    if data.get("object"):
        entries = entries.filter(Q(object_repr__icontains=data["object"]) | Q(object_type=data["object"]))
    if data.get("since"):
        entries = entries.filter(at__gte=day_start(data["since"]))
    if data.get("until"):
        entries = entries.filter(at__lte=day_end(data["until"]))
    return entries


def filtered_audit(request: HttpRequest) -> tuple[QuerySet[AuditEntry], AuditFilterForm, list[str]]:
    access.require(request.user, "portal.use")
    entries, topics = visible_audit(request.user)
    form = AuditFilterForm(request.GET or None)
    if form.is_valid():
        entries = narrow_audit(entries, form.cleaned_data)
    elif form.is_bound:
        entries = entries.none()
    return entries, form, topics


def audit_list(request: HttpRequest) -> HttpResponse:
    entries, form, topics = filtered_audit(request)
    page = paginate(request, entries)
    # Live rows only make sense on the unfiltered first page.
    live = not request.GET.get("page", "1").strip("1") and not any(
        value for key, value in request.GET.items() if key != "page"
    )
    return render(
        request,
        "portal/audit.html",
        {"page": page, "form": form, "topics": topics if live else [], "query": request.GET.urlencode()},
    )


def _csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet would run a cell starting with these as a formula (CSV injection).
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(entries: QuerySet[AuditEntry]) -> Iterator[str]:
    """The trail as CSV lines (header first): the export view and ``manage.py export_audit``."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for e in entries.iterator(chunk_size=1000):
        yield writer.writerow(
            [
                _csv_cell(v)
                for v in (
                    e.at.isoformat(),
                    e.actor_name,
                    e.address,
                    e.action,
                    e.project_name,
                    e.object_type,
                    e.object_id,
                    e.object_repr,
                    e.before,
                    e.after,
                )
            ]
        )


def audit_export(request: HttpRequest) -> StreamingHttpResponse:
    entries, _, _ = filtered_audit(request)
    response = StreamingHttpResponse(csv_rows(entries), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
    return response


SEVERITY_VIEWS = {"all": None, "warnings": Event.Severity.WARNING, "errors": Event.Severity.ERROR}


def event_list(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    view = request.GET.get("view", "all")
    if view not in SEVERITY_VIEWS:
        view = "all"
    events = Event.objects.all()
    if access.is_admin(request.user):
        topics = ["events:all"]
    else:
        project_ids = list(access.projects(request.user, "events.view").values_list("pk", flat=True))
        events = events.filter(project_id__in=project_ids)
        topics = [f"events:project:{pk}" for pk in project_ids]
    if SEVERITY_VIEWS[view]:
        events = events.filter(severity=SEVERITY_VIEWS[view])
    page = paginate(request, events)
    return render(
        request,
        "portal/events.html",
        {"page": page, "view": view, "views": SEVERITY_VIEWS, "topics": topics if page.number == 1 else []},
    )
