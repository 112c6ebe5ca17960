"""The REST API for patch changes: list and read them with each host's plan and progress,
plan one, and take it through submit, approve/reject, apply, resume and cancel. Thin: every
rule and refusal is hosts.patches.changes's, which the pages call too."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.models import PatchChange, PatchChangeStatus, PatchRun
from hosts.patches import changes
from hosts.patches.plan import KINDS, HostPatchPlan, PlanError, Selection
from portal.api_common import ERROR, JSON_ONLY, MAX_ID, JsonSerializer, int_filter
from portal.api_policy import TYPED, StrictFilters


class TransitionSerializer(serializers.Serializer):
    package = serializers.CharField(help_text="name.arch")
    installed = serializers.CharField(help_text="[epoch:]version-release installed when planned")
    target = serializers.CharField(help_text="[epoch:]version-release the plan installs")
    advisories = serializers.ListField(child=serializers.CharField())


class PatchRunSerializer(serializers.ModelSerializer):
    host_name = serializers.CharField(source="host.name", read_only=True)
    transitions = serializers.SerializerMethodField()
    reboot = serializers.SerializerMethodField()

    class Meta:
        model = PatchRun
        fields = [
            "id",
            "host",
            "host_name",
            "batch",
            "state",
            "step",
            "progress",
            "reason",
            "transitions",
            "reboot",
            "snapshot_state",
            "started",
            "finished",
        ]

    @extend_schema_field(TransitionSerializer(many=True))
    def get_transitions(self, run: PatchRun) -> list[dict[str, Any]]:
        return [
            {
                "package": t.key,
                "installed": t.installed.evr,
                "target": t.target.evr,
                "advisories": list(t.advisories),
            }
            for t in HostPatchPlan.from_json(run.plan).transitions
        ]

    def get_reboot(self, run: PatchRun) -> bool:
        return HostPatchPlan.from_json(run.plan).reboot


class PatchChangeSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.get_username", read_only=True, default=None)
    approved_by = serializers.CharField(source="approved_by.get_username", read_only=True, default=None)

    class Meta:
        model = PatchChange
        fields = [
            "id",
            "project",
            "title",
            "selection",
            "batch_size",
            "pause_on_failure",
            "success_window_hours",
            "status",
            "created_by",
            "approved_by",
            "created",
            "approved_at",
            "not_before",
            "finished_at",
        ]


class PatchChangeDetailSerializer(PatchChangeSerializer):
    hosts = PatchRunSerializer(source="runs", many=True, read_only=True)

    class Meta(PatchChangeSerializer.Meta):
        fields = [*PatchChangeSerializer.Meta.fields, "hosts"]


class PatchPlanSerializer(JsonSerializer):
    project = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    hosts = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        min_length=1,
        max_length=10_000,
        help_text="Host ids of the project; or give tag.",
    )
    tag = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, help_text="A tag's id; or hosts."
    )
    kind = serializers.ChoiceField(choices=list(KINDS), help_text="What to apply.")
    advisories = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        max_length=1000,
        help_text="For kind=advisories: their ids.",
    )
    exclude = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        max_length=1000,
        help_text="Package names or fnmatch patterns to leave alone.",
    )
    batch_size = serializers.IntegerField(min_value=1, max_value=changes.MAX_BATCH, default=1)
    pause_on_failure = serializers.BooleanField(default=True)
    success_window_hours = serializers.IntegerField(
        min_value=0, max_value=changes.MAX_WINDOW_HOURS, default=24
    )
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class PatchDecisionSerializer(JsonSerializer):
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=500, help_text="Why; kept in the audit trail."
    )


#: The refusals of hosts.patches.changes (portal.refused), beside the 400s of a bad body, which
#: name their fields (the schema's default validation error).
REFUSALS = {403: ERROR, 404: ERROR, 409: ERROR}


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=list(PatchChangeStatus.values)),
            OpenApiParameter("project", int, description="project id"),
        ]
    )
)
class PatchChangeViewSet(StrictFilters, viewsets.ReadOnlyModelViewSet):
    """Patch changes of the caller's projects: plan, decide, apply in batches, follow."""

    parser_classes = JSON_ONLY
    filters: ClassVar[dict[str, str]] = {"status": TYPED, "project": TYPED}

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return PatchChangeSerializer if self.action == "list" else PatchChangeDetailSerializer

    def get_queryset(self) -> QuerySet[PatchChange]:
        found = changes.visible(self.request.user).select_related("created_by", "approved_by")
        if self.action != "list":
            return found.prefetch_related("runs__host")
        params = self.filter_params(self.request)
        if "status" in params:
            if params["status"] not in PatchChangeStatus.values:
                raise ValidationError({"status": [f"One of {', '.join(PatchChangeStatus.values)}."]})
            found = found.filter(status=params["status"])
        project = int_filter(params, "project")
        if project is not None:
            found = found.filter(project_id=project)
        return found.order_by("-created", "-pk")

    def _answer(self, change: PatchChange, code: int = status.HTTP_200_OK) -> Response:
        return Response(PatchChangeDetailSerializer(self.get_queryset().get(pk=change.pk)).data, status=code)

    @extend_schema(request=PatchPlanSerializer, responses={201: PatchChangeDetailSerializer, **REFUSALS})
    def create(self, request: Request) -> Response:
        """Plan a patch change from the hosts' last check (nothing is asked of the hosts)."""
        body = PatchPlanSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            selection = Selection(
                data["kind"], tuple(data.get("advisories", ())), tuple(data.get("exclude", ()))
            )
        except PlanError as exc:
            raise ValidationError(
                {"advisories" if data["kind"] == "advisories" else "kind": [str(exc)]}
            ) from None
        change = changes.plan_change(
            request.user,
            data["project"],
            host_ids=data.get("hosts"),
            tag_id=data.get("tag"),
            selection=selection,
            batch_size=data["batch_size"],
            pause_on_failure=data["pause_on_failure"],
            success_window_hours=data["success_window_hours"],
            title=data["title"],
        )
        return self._answer(change, status.HTTP_201_CREATED)

    def _act(self, request: Request, pk: str, name: str) -> Response:
        body = PatchDecisionSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        change = changes.act(request.user, pk, name, body.validated_data.get("comment", "").strip())
        return self._answer(change)

    @extend_schema(request=None, responses={200: PatchChangeDetailSerializer, **REFUSALS})
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str) -> Response:
        """Ask for approval (planned → awaiting approval)."""
        return self._act(request, pk, "submit")

    @extend_schema(request=PatchDecisionSerializer, responses={200: PatchChangeDetailSerializer, **REFUSALS})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        return self._act(request, pk, "approve")

    @extend_schema(request=PatchDecisionSerializer, responses={200: PatchChangeDetailSerializer, **REFUSALS})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        return self._act(request, pk, "reject")

    @extend_schema(request=None, responses={200: PatchChangeDetailSerializer, **REFUSALS})
    @action(detail=True, methods=["post"])
    def apply(self, request: Request, pk: str) -> Response:
        """Apply now (the first batch is queued) or, outside the project's maintenance windows,
        at the next opening (status scheduled, not_before)."""
        return self._act(request, pk, "apply")

    @extend_schema(request=None, responses={200: PatchChangeDetailSerializer, **REFUSALS})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        """Go on after a pause: the next batch is queued."""
        return self._act(request, pk, "resume")

    @extend_schema(request=None, responses={200: PatchChangeDetailSerializer, **REFUSALS})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """Cancel a change none of whose hosts is being patched; waiting hosts are skipped."""
        return self._act(request, pk, "cancel")
