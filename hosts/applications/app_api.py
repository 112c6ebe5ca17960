"""The REST API for deploying templates and for applications: plan (nothing starts), deploy,
list and read applications, roll back a failed deploy, remove. Thin: the rules are
``hosts.applications.deployments``', as for the pages."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.applications import deployments, operations, tasks
from hosts.applications.placement import Plan
from hosts.models import Application, ApplicationPlacement, AppTemplate
from portal import access
from portal.api_common import ERROR, JSON_ONLY, JsonSerializer


class DeployRequestSerializer(JsonSerializer):
    name = serializers.CharField(max_length=63, help_text="The Compose project name on the hosts.")
    variables = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=10_000, trim_whitespace=False),
        required=False,
        default=dict,
        help_text="Values of the template's ${VARIABLES}; a default applies to one left out.",
    )
    version = serializers.IntegerField(
        min_value=1, max_value=2_000_000_000, required=False, help_text="Default: the newest."
    )
    one_host = serializers.CharField(
        max_length=255, required=False, default="", allow_blank=True, help_text="All services on this host."
    )


class PlacementSerializer(serializers.Serializer):
    service = serializers.CharField()
    replica = serializers.IntegerField()
    host = serializers.CharField()
    host_id = serializers.IntegerField()
    reason = serializers.CharField()


class PlanSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    failure = serializers.CharField(help_text="Which service and rule did not fit; empty when ok.")
    placements = PlacementSerializer(many=True)


class ApplicationPlacementSerializer(serializers.ModelSerializer):
    host_name = serializers.CharField(source="host.name", read_only=True)

    class Meta:
        model = ApplicationPlacement
        fields = ["service", "replica", "host", "host_name", "reason"]


class ApplicationSerializer(serializers.ModelSerializer):
    template_version = serializers.IntegerField(
        source="version.number", read_only=True, default=None, allow_null=True
    )
    placements = ApplicationPlacementSerializer(many=True, read_only=True)
    variables = serializers.SerializerMethodField(help_text="The names given values (never the values).")

    class Meta:
        model = Application
        fields = [
            "id",
            "project",
            "name",
            "template",
            "template_version",
            "state",
            "outcome",
            "variables",
            "placements",
            "created",
            "updated",
        ]

    def get_variables(self, application: Application) -> list[str]:
        return sorted(tasks.values_of(application))  # the names only: the values stay on the server


class OperateSerializer(JsonSerializer):
    action = serializers.ChoiceField(choices=sorted(operations.ACTIONS))
    service = serializers.CharField(
        max_length=100,
        required=False,
        default="",
        allow_blank=True,
        help_text="One service; all when left out.",
    )


class ScaleSerializer(JsonSerializer):
    service = serializers.CharField(max_length=100)
    replicas = serializers.IntegerField(min_value=1, max_value=operations.MAX_REPLICAS)


class UpdateSerializer(JsonSerializer):
    version = serializers.IntegerField(
        min_value=1, max_value=2_000_000_000, required=False, help_text="Default: the template's newest."
    )


class RemoveSerializer(JsonSerializer):
    volumes = serializers.BooleanField(
        default=False, help_text="Remove its volumes too (their data is lost)."
    )


def _plan(plan: Plan) -> dict[str, Any]:
    return {
        "ok": plan.ok,
        "failure": plan.failure,
        "placements": [
            {
                "service": p.service,
                "replica": p.replica,
                "host": p.host,
                "host_id": p.host_id,
                "reason": p.reason,
            }
            for p in plan.placements
        ],
    }


def _proposal(request: Request, template: AppTemplate) -> deployments.Proposal:
    access.require(
        request.user, "app.deploy", template.project_id
    )  # before the body: outsiders learn nothing
    body = DeployRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    return deployments.propose(
        request.user,
        template,
        name=data["name"],
        values=dict(data["variables"]),
        version=data.get("version"),
        one_host=data["one_host"],
    )


class TemplateDeployMixin:
    """The template's ``plan`` and ``deploy`` actions (mixed into the templates' viewset)."""

    get_object: Any

    @extend_schema(request=DeployRequestSerializer, responses={200: PlanSerializer, 403: ERROR, 409: ERROR})
    @action(detail=True, methods=["post"])
    def plan(self, request: Request, pk: str) -> Response:
        """Where each replica would go and why; nothing starts. 409: an application of that name
        is deployed already (the same refusal as the deploy's)."""
        return Response(_plan(_proposal(request, self.get_object()).plan))

    @extend_schema(
        request=DeployRequestSerializer,
        responses={202: ApplicationSerializer, 403: ERROR, 409: ERROR},
    )
    @action(detail=True, methods=["post"])
    def deploy(self, request: Request, pk: str) -> Response:
        """Deploy the template as planned (refused when the plan does not fit); follow the state."""
        application = deployments.deploy(request.user, _proposal(request, self.get_object()))
        return Response(ApplicationSerializer(application).data, status=status.HTTP_202_ACCEPTED)


class ApplicationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Deployed applications in the caller's projects (``app.view``)."""

    parser_classes = JSON_ONLY
    serializer_class = ApplicationSerializer

    def get_queryset(self) -> QuerySet[Application]:
        return (
            deployments.visible(self.request.user).prefetch_related("placements__host").order_by("name", "pk")
        )

    def _then(self, body: serializers.Serializer, step: Any) -> Response:
        application = self.get_object()
        access.require(self.request.user, "app.deploy", application.project_id)  # before the body
        body.is_valid(raise_exception=True)
        step(application, body.validated_data)
        application.refresh_from_db()
        return Response(ApplicationSerializer(application).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=OperateSerializer, responses={202: ApplicationSerializer, 403: ERROR, 409: ERROR})
    @action(detail=True, methods=["post"])
    def operate(self, request: Request, pk: str) -> Response:
        """Stop, start or restart the application, or one service of it, in a task."""
        return self._then(
            OperateSerializer(data=request.data),
            lambda app, data: operations.request_action(request.user, app, data["action"], data["service"]),
        )

    @extend_schema(request=ScaleSerializer, responses={202: ApplicationSerializer, 403: ERROR, 409: ERROR})
    @action(detail=True, methods=["post"])
    def scale(self, request: Request, pk: str) -> Response:
        """Run that many replicas of a service, placed as a deploy places them; refused if they cannot fit."""
        return self._then(
            ScaleSerializer(data=request.data),
            lambda app, data: operations.request_scale(request.user, app, data["service"], data["replicas"]),
        )

    @extend_schema(request=UpdateSerializer, responses={202: ApplicationSerializer, 403: ERROR, 409: ERROR})
    @action(detail=True, methods=["post"], url_path="update")
    def update_version(self, request: Request, pk: str) -> Response:
        """Update to a version of its template (the newest when left out; the one before: a roll back)."""
        return self._then(
            UpdateSerializer(data=request.data),
            lambda app, data: deployments.request_update(request.user, app, data.get("version")),
        )

    @extend_schema(request=RemoveSerializer, responses={202: ApplicationSerializer, 403: ERROR, 409: ERROR})
    @action(detail=True, methods=["post"])
    def remove(self, request: Request, pk: str) -> Response:
        """Remove its containers and networks (volumes only when asked), in a task."""
        application = self.get_object()
        body = RemoveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        deployments.request_remove(request.user, application, volumes=body.validated_data["volumes"])
        return Response(ApplicationSerializer(application).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: ApplicationSerializer, 403: ERROR, 409: ERROR})
    @action(detail=True, methods=["post"], url_path="roll-back")
    def roll_back(self, request: Request, pk: str) -> Response:
        """Remove what a failed deploy created, in a task."""
        application = self.get_object()
        deployments.request_roll_back(request.user, application)
        return Response(ApplicationSerializer(application).data, status=status.HTTP_202_ACCEPTED)
