"""The REST API for hosts and their containers (asked of each host's engine).

Thin, like the views: the same visibility and access rules as the UI, the same Celery
tasks for anything slow, audited where the UI audits. An object in a project the
caller cannot see is a 404; one they see but may not act on is a 403.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.db.models import Q, QuerySet
from django.http import Http404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiTypes,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.fleet import containers as engine_containers
from hosts.fleet import engine, services
from hosts.fleet.api_adding import HostAdding, HostAddSerializer
from hosts.fleet.api_deploy import HostDeploys
from hosts.fleet.patches_api import HostPatches
from hosts.models import ENGINE_FACTS, Host, HostStatus, Tag
from portal import access
from portal.api_common import ERROR, JSON_ONLY, Conflict, JsonSerializer, int_filter
from portal.api_policy import TEXT, TYPED, Pages, StrictFilters

ENGINE_TIMEOUT = 4


class EngineUnreachable(APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The host's Docker engine did not answer."


# -- hosts ------------------------------------------------------------------------------------------


class HostSerializer(serializers.ModelSerializer):
    project_name = serializers.CharField(source="project.name", read_only=True)
    # many=True makes a ManyRelatedField (RelatedField.__new__); the annotation names the model.
    tags: serializers.RelatedField[Tag, Any, Any] | serializers.ManyRelatedField = (
        serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    )

    class Meta:
        model = Host
        # The TLS client key and the SSH key are secrets: never part of any answer.
        fields = [
            "id",
            "name",
            "project",
            "project_name",
            "tags",
            "enabled",
            "docker_url",
            "insecure",
            "tls_fingerprint",
            "address",
            "status",
            "last_seen",
            "last_error",
            *ENGINE_FACTS,
            "created",
            "updated",
        ]


# -- containers (on a host, asked of its engine) -----------------------------------------------------


class ContainerSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    image = serializers.CharField()
    state = serializers.CharField()
    status = serializers.CharField()
    ports = serializers.ListField(child=serializers.CharField())
    created = serializers.IntegerField()
    labels = serializers.DictField(child=serializers.CharField())


class ContainerActionSerializer(JsonSerializer):
    host = serializers.IntegerField()
    container = serializers.CharField()
    action = serializers.CharField()
    detail = serializers.CharField()


def _engine_call(host: Host, call: Any) -> Any:
    if not host.enabled:
        raise Conflict(f"Host {host.name} is disabled: its engine is not asked.")
    try:
        sdk = engine.client_for(host, timeout=ENGINE_TIMEOUT)
        try:
            return call(sdk)
        finally:
            sdk.close()
    except Exception as exc:  # noqa: BLE001 - the caller gets the engine's reason, never a 500
        message = engine.describe_error(exc, host.docker_url)
        if "No such container" in message:
            raise Http404("No such container.") from None
        raise EngineUnreachable(message) from None


CONTAINER_PATH = OpenApiParameter(
    "container_id", str, OpenApiParameter.PATH, description="the container's id (12 to 64 hex digits)"
)


# Typed as the viewset it is mixed into (mypy); at run time a plain mixin.
if TYPE_CHECKING:
    _APIView = GenericAPIView
else:
    _APIView = object


class HostContainers(_APIView):
    """A host's containers, read from its engine; start, stop, restart and remove as tasks
    (the UI's own: hosts.fleet.tasks), audited as the UI audits them.

    Mixed into API views only (to the type checker it is one; at run time its base is object)."""

    def _host(self, pk: str, needed: str = "host.view") -> Host:
        return Host.objects.select_related("project").get_or_404(self.request.user, pk, needed)

    @extend_schema(
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: ContainerSerializer(many=True), 409: ERROR, 502: ERROR},
    )
    @action(detail=True, methods=["get"], url_path="containers", url_name="containers")
    def containers(self, request: Request, pk: str) -> Response:
        host = self._host(pk)
        rows = _engine_call(host, engine_containers.list_containers)
        paginator = Pages()
        page: list[Any] | None = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(ContainerSerializer(page, many=True).data)

    @extend_schema(
        parameters=[CONTAINER_PATH],
        responses={200: OpenApiTypes.OBJECT, 409: ERROR, 502: ERROR},
        description="The engine's inspect; environment values hidden from Viewers.",
    )
    @action(
        detail=True, methods=["get"], url_path=r"containers/(?P<container_id>[^/.]+)", url_name="container"
    )
    def container(self, request: Request, pk: str, container_id: str) -> Response:
        host = self._host(pk)
        services.container_id_or_404(container_id)
        show_secrets = access.can(request.user, "host.operate", host.project_id)
        return Response(
            _engine_call(
                host, lambda sdk: engine_containers.inspect(sdk, container_id, show_secrets=show_secrets)
            )
        )

    @extend_schema(
        parameters=[CONTAINER_PATH],
        responses={202: ContainerActionSerializer, 409: ERROR},
        description="Removes the container (forced): DELETE is the confirmation.",
    )
    @container.mapping.delete
    def remove_container(self, request: Request, pk: str, container_id: str) -> Response:
        return self._act(pk, container_id, "remove")

    def _act(self, pk: str, container_id: str, what: str) -> Response:
        host = self._host(pk, "host.operate")
        services.request_container_action(host, container_id, what)
        body = {"host": host.pk, "container": container_id, "action": what, "detail": f"{what} requested"}
        return Response(body, status=status.HTTP_202_ACCEPTED)

    _action_schema = extend_schema(
        parameters=[CONTAINER_PATH], request=None, responses={202: ContainerActionSerializer, 409: ERROR}
    )

    @_action_schema
    @action(
        detail=True,
        methods=["post"],
        url_path=r"containers/(?P<container_id>[^/.]+)/start",
        url_name="container-start",
    )
    def start_container(self, request: Request, pk: str, container_id: str) -> Response:
        return self._act(pk, container_id, "start")

    @_action_schema
    @action(
        detail=True,
        methods=["post"],
        url_path=r"containers/(?P<container_id>[^/.]+)/stop",
        url_name="container-stop",
    )
    def stop_container(self, request: Request, pk: str, container_id: str) -> Response:
        return self._act(pk, container_id, "stop")

    @_action_schema
    @action(
        detail=True,
        methods=["post"],
        url_path=r"containers/(?P<container_id>[^/.]+)/restart",
        url_name="container-restart",
    )
    def restart_container(self, request: Request, pk: str, container_id: str) -> Response:
        return self._act(pk, container_id, "restart")


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="name, Docker endpoint or OS contains"),
            OpenApiParameter("status", str, enum=list(HostStatus.values)),
            OpenApiParameter("project", int, description="project id"),
            OpenApiParameter("tag", str, description="tag name"),
        ]
    ),
    create=extend_schema(
        request=HostAddSerializer,
        responses={201: HostSerializer, 502: ERROR},
        description="Verify again with the confirmed fingerprint or SSH host key, then save (`host.manage`).",
    ),
)
class HostViewSet(
    HostAdding, HostDeploys, HostContainers, HostPatches, StrictFilters, viewsets.ReadOnlyModelViewSet
):
    """Photon hosts the caller may see (``host.view``), as the fleet dashboard shows them; a
    Project admin adds one (verify, then add with what verify reported, confirmed), a
    Provisioner deploys a container onto one."""

    parser_classes = JSON_ONLY

    serializer_class = HostSerializer
    filters: ClassVar[dict[str, str]] = {"q": TEXT, "status": TYPED, "project": TYPED, "tag": TEXT}

    def get_queryset(self) -> QuerySet[Host]:
        hosts = Host.objects.visible_to(self.request.user).select_related("project").prefetch_related("tags")
        if self.action != "list":
            return hosts
        params = self.filter_params(self.request)
        if "q" in params:
            q = params["q"][:100]
            hosts = hosts.filter(Q(name__icontains=q) | Q(docker_url__icontains=q) | Q(os_name__icontains=q))
        if "status" in params:
            if params["status"] not in HostStatus.values:
                raise ValidationError({"status": [f"One of {', '.join(HostStatus.values)}."]})
            hosts = hosts.filter(status=params["status"])
        project = int_filter(params, "project")
        if project is not None:
            hosts = hosts.filter(project_id=project)
        if "tag" in params:
            hosts = hosts.filter(tags__name=params["tag"])
        return hosts.order_by("name", "pk")
