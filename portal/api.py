"""The REST API's shared parts and the portal's own resources (projects, audit, events).

Every endpoint authenticates with a personal token (portal.api_auth) or the
browser session, and asks portal.access exactly as the UI does, so the API can
never do what the UI forbids. Lists are paged; unknown filters are refused.
The URLs, the portal's and the apps' viewsets together, are ``portal.api_urls``.
"""

from __future__ import annotations

from typing import ClassVar

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError

from . import access, event_kinds
from .api_policy import TEXT, TYPED, StrictFilters
from .audit_views import AuditFilterForm, narrow_audit, visible_audit
from .models import AuditEntry, Event, Project


class ProjectSerializer(serializers.ModelSerializer):
    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "description", "created", "my_role"]

    def get_my_role(self, project: Project) -> str | None:
        user = self.context["request"].user
        if access.is_admin(user):
            return "admin"
        role = access.role_in(user, project)
        return role.value if role else None


class ProjectViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProjectSerializer

    def get_queryset(self) -> QuerySet[Project]:
        return access.projects(self.request.user)


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name")
    project = serializers.CharField(source="project_name")
    object = serializers.CharField(source="object_repr")

    class Meta:
        model = AuditEntry
        fields = [
            "id",
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


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(name, kind, description=help_text)
            for name, kind, help_text in (
                ("person", str, "user name contains"),
                ("action", str, "action starts with"),
                ("object", str, "object name contains, or object type equals"),
                ("since", OpenApiTypes.DATE, "from this day (YYYY-MM-DD)"),
                ("until", OpenApiTypes.DATE, "up to this day (YYYY-MM-DD)"),
            )
        ]
    )
)
class AuditViewSet(StrictFilters, viewsets.ReadOnlyModelViewSet):
    """The audit trail, read-only: there is no way to change it, here or anywhere."""

    serializer_class = AuditEntrySerializer
    filters: ClassVar[dict[str, str]] = {
        "person": TEXT,
        "action": TEXT,
        "object": TEXT,
        "since": TYPED,
        "until": TYPED,
    }

    def get_queryset(self) -> QuerySet[AuditEntry]:
        entries, _ = visible_audit(self.request.user)
        form = AuditFilterForm(self.filter_params(self.request))
        if not form.is_valid():
            raise ValidationError({k: [str(e) for e in v] for k, v in form.errors.items()})
        return narrow_audit(entries, form.cleaned_data)


class EventSerializer(serializers.ModelSerializer):
    object = serializers.CharField(source="object_repr")

    class Meta:
        model = Event
        fields = ["id", "at", "severity", "kind", "project", "object_type", "object_id", "object", "message"]


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("severity", str, enum=list(Event.Severity.values)),
            OpenApiParameter("kind", str, enum=list(event_kinds.KINDS), description="what happened"),
        ]
    )
)
class EventViewSet(StrictFilters, viewsets.ReadOnlyModelViewSet):
    serializer_class = EventSerializer
    filters: ClassVar[dict[str, str]] = {"severity": TYPED, "kind": TYPED}

    def get_queryset(self) -> QuerySet[Event]:
        events = Event.objects.all()
        if not access.is_admin(self.request.user):
            events = events.filter(project__in=access.projects(self.request.user, "events.view"))
        params = self.filter_params(self.request)
        if "severity" in params:
            if params["severity"] not in Event.Severity.values:
                raise ValidationError({"severity": [f"One of {', '.join(Event.Severity.values)}."]})
            events = events.filter(severity=params["severity"])
        if "kind" in params:
            if params["kind"] not in event_kinds.KINDS:
                raise ValidationError({"kind": [f"One of {', '.join(event_kinds.KINDS)}."]})
            events = events.filter(kind=params["kind"])
        return events
