"""The REST API for application templates: list, read, create, save a new version, remove,
versions and export. Thin: the rules are ``hosts.applications.catalog``'s, as for the pages."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.applications import catalog
from hosts.applications.app_api import TemplateDeployMixin
from hosts.models import AppTemplate, TemplateVersion
from portal import access
from portal.api_common import ERROR, JSON_ONLY, MAX_ID, JsonSerializer
from portal.models import Project
from portal.refused import Refused


class VersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(
        source="created_by.get_username", read_only=True, default=None, allow_null=True
    )
    compose_file = serializers.CharField(source="source", read_only=True)

    class Meta:
        model = TemplateVersion
        fields = ["number", "note", "created_by", "created", "compose_file"]


class TemplateSerializer(serializers.ModelSerializer):
    latest = serializers.IntegerField(read_only=True, help_text="The newest version's number.")

    class Meta:
        model = AppTemplate
        fields = ["id", "project", "name", "description", "latest", "created", "updated"]


class TemplateDetailSerializer(TemplateSerializer):
    compose_file = serializers.SerializerMethodField(help_text="The newest version's Compose file.")
    variables = serializers.SerializerMethodField(help_text="The ${VARIABLES} a deploy fills in.")

    class Meta(TemplateSerializer.Meta):
        fields = [*TemplateSerializer.Meta.fields, "compose_file", "variables"]

    def get_compose_file(self, template: AppTemplate) -> str:
        return catalog.version_of(template).source

    def get_variables(self, template: AppTemplate) -> list[dict[str, Any]]:
        return [
            {"name": v.name, "default": v.default, "required": v.required}
            for v in catalog.variables_of(self.get_compose_file(template))
        ]


class SaveSerializer(JsonSerializer):
    project = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        help_text="Required to create (404: no such project you can see); a template keeps its project.",
    )
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000, default="")
    compose_file = serializers.CharField(
        trim_whitespace=False, max_length=catalog.MAX_SOURCE, help_text="The Compose file, kept as given."
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")

    def draft(self) -> catalog.Draft:
        data = self.validated_data
        return catalog.Draft(
            name=data["name"], source=data["compose_file"], description=data["description"], note=data["note"]
        )


class TemplateViewSet(
    TemplateDeployMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Application templates in the caller's projects (``app.view``); Project admins keep them."""

    parser_classes = JSON_ONLY

    def get_queryset(self) -> QuerySet[AppTemplate]:
        return catalog.visible(self.request.user).order_by("name", "pk")

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return TemplateSerializer if self.action == "list" else TemplateDetailSerializer

    def _saved(self, version: TemplateVersion, code: int) -> Response:
        template = self.get_queryset().get(pk=version.template_id)
        return Response(TemplateDetailSerializer(template).data, status=code)

    @extend_schema(request=SaveSerializer, responses={201: TemplateDetailSerializer, 409: ERROR})
    def create(self, request: Request) -> Response:
        """Import a Compose file as a new template: checked whole, refused naming each key and line."""
        body = SaveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        project = None
        if "project" in body.validated_data:
            project = Project.objects.filter(pk=body.validated_data["project"]).first()
            # One answer for none and for one not visible: nothing to tell them apart by.
            if project is None or not access.can(request.user, "project.view", project):
                raise NotFound("No such project, or not visible to you.")
        version = catalog.save(request.user, body.draft(), project=project)
        return self._saved(version, status.HTTP_201_CREATED)

    @extend_schema(request=SaveSerializer, responses={200: TemplateDetailSerializer, 409: ERROR})
    def update(self, request: Request, pk: str) -> Response:
        """Save over the template: a new version when the Compose file changed."""
        template = self.get_object()
        access.require(
            request.user, "app.manage", template.project_id
        )  # before the body: outsiders learn nothing
        body = SaveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = catalog.save(request.user, body.draft(), template=template)
        return self._saved(version, status.HTTP_200_OK)

    def perform_destroy(self, instance: AppTemplate) -> None:
        catalog.remove(self.request.user, instance)

    @extend_schema(responses={200: VersionSerializer(many=True)})
    # Not paged: the answer is every version, as the schema says (a list, not a page).
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def versions(self, request: Request, pk: str) -> Response:
        """Every version, newest first, each with its Compose file."""
        template = self.get_object()
        return Response(VersionSerializer(template.versions.select_related("created_by"), many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("version", int, description="A version's number; the newest when left out.")
        ],
        responses={
            # YAML is a document, read by clients as what it holds: a Compose file is a mapping.
            (200, "application/yaml"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="The Compose file as saved (YAML: a mapping)."
            ),
            404: ERROR,
        },
    )
    @action(detail=True, methods=["get"])
    def export(self, request: Request, pk: str) -> HttpResponse:
        template = self.get_object()
        raw = request.query_params.get("version", "")
        number = int(raw) if raw.isdigit() and len(raw) < 10 else None
        if raw and number is None:
            return Response({"version": ["A version's number."]}, status=status.HTTP_400_BAD_REQUEST)
        try:
            version = catalog.version_of(template, number)
        except Refused as refused:
            # A 404's body is `detail`, as the schema says (the catalog names its field).
            raise NotFound(refused.message) from None
        return HttpResponse(version.source.encode("utf-8"), content_type="application/yaml")
