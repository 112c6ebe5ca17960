"""The REST API for profiles and configuration changes.

Thin, like the views: the same flow (plan, approve, apply) as the UI, audited there.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Avg, QuerySet
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.changes import approval, errors, services
from hosts.changes import desired as change_desired
from hosts.models import Host, Tag
from hosts.models.changes import Change, ChangeRun, ChangeStatus, Profile
from portal import access
from portal.api_common import ERROR, JSON_ONLY, JsonSerializer
from portal.api_policy import TYPED, StrictFilters

# -- profiles and changes ---------------------------------------------------------------------------------


class ProfileSerializer(serializers.ModelSerializer):
    # many=True makes a ManyRelatedField (RelatedField.__new__); the annotation names the models.
    hosts: serializers.RelatedField[Host, Any, Any] | serializers.ManyRelatedField = (
        serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    )
    tags: serializers.RelatedField[Tag, Any, Any] | serializers.ManyRelatedField = (
        serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    )

    class Meta:
        model = Profile
        fields = ["id", "project", "name", "description", "settings", "hosts", "tags", "created", "updated"]

    def validate_settings(self, value: Any) -> dict[str, Any]:
        # The same rules as the profile form and planning (hosts.changes.desired.validate_settings).
        try:
            return change_desired.validate_settings(value)
        except errors.ChangeError as exc:
            raise ValidationError([p.message for p in exc.problems] or [str(exc)]) from None


class PlanSerializer(JsonSerializer):
    hosts = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=10_000,
        help_text="Only these of the profile's hosts (ids); all of them when left out.",
    )


class ChangeRunSerializer(serializers.ModelSerializer):
    host_name = serializers.CharField(source="host.name", read_only=True)
    diff = serializers.SerializerMethodField()

    class Meta:
        model = ChangeRun
        fields = [
            "id",
            "host",
            "host_name",
            "state",
            "reason",
            "step",
            "progress",
            "restarts",
            "diff",
            "finished",
        ]

    def get_diff(self, run: ChangeRun) -> str:
        # A rendered file that carries a secret (a private key) never leaves the server.
        return "".join(f.get("diff", "") for f in run.files if not f.get("secret"))


class ChangeSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    created_by = serializers.CharField(
        source="created_by.get_username", read_only=True, default=None, allow_null=True
    )
    approved_by = serializers.CharField(
        source="approved_by.get_username", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = Change
        fields = [
            "id",
            "project",
            "title",
            "profile",
            "reverts",
            "status",
            "settings",
            "progress",
            "created_by",
            "approved_by",
            "created",
            "approved_at",
            "finished_at",
        ]

    def get_progress(self, change: Change) -> int:
        # Lists annotate it (one query for the page); a single change asks hosts.changes.news.
        if hasattr(change, "average_progress"):
            return int(change.average_progress or 0)
        return change.progress()


class ChangeDetailSerializer(ChangeSerializer):
    hosts = ChangeRunSerializer(source="runs", many=True, read_only=True)

    class Meta(ChangeSerializer.Meta):
        fields = [*ChangeSerializer.Meta.fields, "hosts"]


class DecisionSerializer(JsonSerializer):
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Why; kept in the audit trail."
    )


@extend_schema_field({"type": "boolean", "enum": [True]})
class ConfirmField(serializers.BooleanField):
    """Only true is an answer (false is refused): the schema says so, so a script learns it there."""


class ApplySerializer(JsonSerializer):
    confirm = ConfirmField(help_text="true: you have read the diffs.")


def _visible_projects(user: Any) -> QuerySet[Any]:
    return access.projects(user, "change.view")


class ProfileViewSet(viewsets.ReadOnlyModelViewSet):
    """Profiles of desired settings in the caller's projects (``change.view``)."""

    parser_classes = JSON_ONLY

    serializer_class = ProfileSerializer

    def get_queryset(self) -> QuerySet[Profile]:
        return (
            Profile.objects.filter(project__in=_visible_projects(self.request.user))
            .prefetch_related("hosts", "tags")
            .order_by("name", "pk")
        )

    @extend_schema(request=PlanSerializer, responses={202: ChangeSerializer})
    @action(detail=True, methods=["post"])
    def plan(self, request: Request, pk: str) -> Response:
        """Plan the profile on its hosts: SSH reads only, in a task. Follow the change's status."""
        profile = self.get_object()
        access.require(request.user, "change.plan", profile.project_id)
        body = PlanSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        change = services.request_plan(profile, request.user, body.validated_data.get("hosts") or [])
        return Response(ChangeSerializer(change).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(parameters=[OpenApiParameter("status", str, enum=list(ChangeStatus.values))])
)
class ChangeViewSet(StrictFilters, viewsets.ReadOnlyModelViewSet):
    """Changes: their status and per-host progress and diffs; approve, reject, apply."""

    parser_classes = JSON_ONLY

    filters: ClassVar[dict[str, str]] = {"status": TYPED}

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return ChangeSerializer if self.action == "list" else ChangeDetailSerializer

    def get_queryset(self) -> QuerySet[Change]:
        changes = Change.objects.filter(project__in=_visible_projects(self.request.user)).select_related(
            "created_by", "approved_by"
        )
        if self.action != "list":
            return changes.prefetch_related("runs__host")
        params = self.filter_params(self.request)
        if "status" in params:
            if params["status"] not in ChangeStatus.values:
                raise ValidationError({"status": [f"One of {', '.join(ChangeStatus.values)}."]})
            changes = changes.filter(status=params["status"])
        return changes.annotate(average_progress=Avg("runs__progress")).order_by("-created", "-pk")

    def _flow(self, needed: str, step: Any) -> Response:
        change = self.get_object()
        access.require(self.request.user, needed, change.project_id)
        step(change)  # a ChangeError is a Refused: answered as JSON, as the UI shows it
        change = self.get_queryset().get(pk=change.pk)
        return Response(ChangeDetailSerializer(change).data)

    def _decide(self, decide: Any) -> Response:
        # No body is no comment; a body of JSON null is not an object, and is refused (400).
        body = DecisionSerializer(data=self.request.data)

        def step(change: Change) -> None:
            body.is_valid(raise_exception=True)  # after the access check: outsiders learn nothing
            decide(change, self.request.user, body.validated_data.get("comment", "").strip())

        return self._flow("change.approve", step)

    @extend_schema(request=DecisionSerializer, responses={200: ChangeDetailSerializer, 409: ERROR})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        return self._decide(approval.approve)

    @extend_schema(request=DecisionSerializer, responses={200: ChangeDetailSerializer, 409: ERROR})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        return self._decide(approval.reject)

    @extend_schema(request=ApplySerializer, responses={200: ChangeDetailSerializer, 409: ERROR})
    @action(detail=True, methods=["post"])
    def apply(self, request: Request, pk: str) -> Response:
        """Queue each host still to do as a task (backup, write, validate, restart, verify, roll back)."""
        body = ApplySerializer(data=request.data)

        def start(change: Change) -> None:
            body.is_valid(raise_exception=True)
            if not body.validated_data["confirm"]:
                raise ValidationError({"confirm": ["Confirm (true) that you have read the diffs."]})
            approval.start_apply(change, request.user)

        return self._flow("change.plan", start)
