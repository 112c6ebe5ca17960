"""The REST API for hosts, containers, vCenters and VMs, profiles and changes.

Thin, like the views: the same visibility helpers and access checks as the UI
(``hosts.views``), the same service code (``hosts.changes.flow``), the same Celery
tasks for anything slow, audited where the UI audits. An object in a project the
caller cannot see is a 404; one they see but may not act on is a 403.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Avg, Q, QuerySet
from django.http import Http404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    OpenApiTypes,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.changes import flow
from hosts.changes import tasks as change_tasks
from hosts.fleet import engine
from hosts.fleet import tasks as host_tasks
from hosts.fleet.views import host_or_404, visible_hosts
from hosts.models import ENGINE_FACTS, Host, HostStatus, VCenter, VirtualMachine, VmTask
from hosts.models.changes import Change, ChangeHost, ChangeStatus, Profile
from hosts.vsphere import tasks as vsphere_tasks
from hosts.vsphere.views import _SNAPSHOT_NAME, visible_vms, vm_or_404
from portal import access, audit
from portal.api_policy import Pages, StrictFilters

ENGINE_TIMEOUT = 4
#: Bodies are JSON: one documented media type, and form parsing never runs on API calls.
JSON_ONLY = [JSONParser]


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Not possible in this object's present state."


class EngineUnreachable(APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The host's Docker engine did not answer."


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


ERROR = OpenApiResponse(DetailSerializer, description="`detail` says why.")


def _int_filter(params: dict[str, str], name: str) -> int | None:
    if name not in params:
        return None
    if not params[name].isdigit():
        raise ValidationError({name: ["A number."]})
    return int(params[name])


# -- hosts ------------------------------------------------------------------------------------------


class HostSerializer(serializers.ModelSerializer):
    project_name = serializers.CharField(source="project.name", read_only=True)
    tags = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

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


class ContainerActionSerializer(serializers.Serializer):
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


def _container_id(container_id: str) -> str:
    # Routed loosely, checked here: anything else is a 404, as in the UI.
    if not (12 <= len(container_id) <= 64 and all(c in "0123456789abcdef" for c in container_id)):
        raise Http404("No such container.")
    return container_id


class HostContainers:
    """A host's containers, read from its engine; start, stop, restart and remove as tasks
    (the UI's own: hosts.fleet.tasks), audited as the UI audits them."""

    request: Request
    kwargs: dict[str, Any]

    def _host(self, pk: str, needed: str = "host.view") -> Host:
        if not str(pk).isdigit():
            raise Http404("No such host.")
        return host_or_404(self.request, int(pk), needed)

    @extend_schema(
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: ContainerSerializer(many=True), 409: ERROR, 502: ERROR},
    )
    @action(detail=True, methods=["get"], url_path="containers", url_name="containers")
    def containers(self, request: Request, pk: str) -> Response:
        host = self._host(pk)
        rows = _engine_call(host, engine.list_containers)
        paginator = Pages()
        page = paginator.paginate_queryset(rows, request, view=self)  # type: ignore[arg-type]
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
        _container_id(container_id)
        show_secrets = access.can(request.user, "host.operate", host.project_id)
        return Response(
            _engine_call(host, lambda sdk: engine.inspect(sdk, container_id, show_secrets=show_secrets))
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
        _container_id(container_id)
        if not host.enabled:
            raise Conflict(f"Host {host.name} is disabled: enable it first.")
        audit.record(
            f"container.{what}", obj=host, project=host.project, after={"container": container_id[:12]}
        )
        host_tasks.container_action.delay(host.pk, container_id, what)
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
    )
)
class HostViewSet(HostContainers, StrictFilters, viewsets.ReadOnlyModelViewSet):
    """Photon hosts the caller may see (``host.view``), as the fleet dashboard shows them."""

    parser_classes = JSON_ONLY

    serializer_class = HostSerializer
    filters: ClassVar[dict[str, str]] = {"q": "", "status": "", "project": "", "tag": ""}

    def get_queryset(self) -> QuerySet[Host]:
        hosts = visible_hosts(self.request.user).select_related("project").prefetch_related("tags")
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
        project = _int_filter(params, "project")
        if project is not None:
            hosts = hosts.filter(project_id=project)
        if "tag" in params:
            hosts = hosts.filter(tags__name=params["tag"])
        return hosts.order_by("name", "pk")


# -- vCenters and VMs ----------------------------------------------------------------------------------


class VCenterSerializer(serializers.ModelSerializer):
    class Meta:
        model = VCenter
        # The password is a secret; the certificate is the pin (its thumbprint says which).
        fields = [
            "id",
            "name",
            "url",
            "username",
            "thumbprint",
            "auto_register_project",
            "enabled",
            "version",
            "connected",
            "last_sync",
            "last_error",
            "created",
        ]


class VCenterViewSet(viewsets.ReadOnlyModelViewSet):
    """vCenters: an Admin's (``vcenter.manage``), as in the UI."""

    parser_classes = JSON_ONLY

    serializer_class = VCenterSerializer

    def get_queryset(self) -> QuerySet[VCenter]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return VCenter.objects.none()
        access.require(self.request.user, "vcenter.manage")
        return VCenter.objects.select_related("auto_register_project").order_by("name")

    @extend_schema(request=None, responses={202: DetailSerializer})
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, pk: str) -> Response:
        vcenter = self.get_object()
        vsphere_tasks.sync_vcenter.delay(vcenter.pk)
        return Response({"detail": f"Reading {vcenter.name}."}, status=status.HTTP_202_ACCEPTED)


class VmSerializer(serializers.ModelSerializer):
    vcenter = serializers.CharField(source="vcenter.name", read_only=True)
    datacenter = serializers.CharField(source="datacenter.name", read_only=True, default=None)
    cluster = serializers.CharField(source="cluster.name", read_only=True, default=None)
    esx_host = serializers.CharField(source="esx_host.name", read_only=True, default=None)

    class Meta:
        model = VirtualMachine
        fields = [
            "id",
            "name",
            "moref",
            "vcenter",
            "datacenter",
            "cluster",
            "esx_host",
            "power_state",
            "guest_id",
            "guest_full_name",
            "ip_address",
            "guest_hostname",
            "cpus",
            "memory_mb",
            "is_photon",
            "host",
            "snapshots",
            "gone",
            "updated",
        ]


class VmTaskSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.get_username", read_only=True, default=None)

    class Meta:
        model = VmTask
        fields = [
            "id",
            "vm",
            "action",
            "argument",
            "actor",
            "state",
            "progress",
            "error",
            "started",
            "finished",
        ]


class VmActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=list(vsphere_tasks.ACTIONS))
    argument = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="snapshot_create: the snapshot's name; snapshot_revert: the snapshot's moref.",
    )
    confirm = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Required (true) for power_off, reset, shutdown_guest and revert.",
    )


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="name or IP address contains"),
            OpenApiParameter("photon", bool, description="Photon OS VMs only"),
            OpenApiParameter("power_state", str),
        ]
    )
)
class VmViewSet(StrictFilters, viewsets.ReadOnlyModelViewSet):
    """VMs: Admins all, members the VMs that are hosts of their projects (``vm.view``)."""

    parser_classes = JSON_ONLY

    serializer_class = VmSerializer
    filters: ClassVar[dict[str, str]] = {"q": "", "photon": "", "power_state": ""}

    def get_queryset(self) -> QuerySet[VirtualMachine]:
        vms = visible_vms(self.request.user).select_related("vcenter", "datacenter", "cluster", "esx_host")
        if self.action != "list":
            return vms
        params = self.filter_params(self.request)
        vms = vms.filter(gone=False)
        if "q" in params:
            q = params["q"][:100]
            vms = vms.filter(Q(name__icontains=q) | Q(ip_address__icontains=q))
        if params.get("photon") in {"1", "true"}:
            vms = vms.filter(is_photon=True)
        if "power_state" in params:
            vms = vms.filter(power_state=params["power_state"])
        return vms.order_by("name", "pk")

    def get_object(self) -> VirtualMachine:
        pk = self.kwargs["pk"]
        if not str(pk).isdigit():
            raise Http404("No such virtual machine.")
        return vm_or_404(self.request, int(pk))

    @extend_schema(
        request=VmActionSerializer,
        responses={202: VmTaskSerializer, 409: ERROR},
        description="Power or snapshot action, run as a vSphere task; follow it at /api/vm-tasks/ID/.",
    )
    @action(detail=True, methods=["post"])
    def power(self, request: Request, pk: str) -> Response:
        if not str(pk).isdigit():
            raise Http404("No such virtual machine.")
        vm = vm_or_404(request, int(pk), "vm.operate")
        body = VmActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        what, argument = body.validated_data["action"], body.validated_data.get("argument", "").strip()
        label, destructive = vsphere_tasks.ACTIONS[what]
        if vm.gone:
            raise Conflict("This VM is gone from vCenter.")
        if what == "snapshot_create":
            argument = argument or f"portal-{vm.tasks.count() + 1}"
            if not _SNAPSHOT_NAME.match(argument):
                raise ValidationError(
                    {
                        "argument": [
                            "A snapshot name is 1 to 80 characters, without < > or control characters."
                        ]
                    }
                )
        elif what == "snapshot_revert":
            if argument not in {s["moref"] for s in vm.snapshots}:
                raise ValidationError({"argument": ["No such snapshot."]})
        else:
            argument = ""
        if destructive and not body.validated_data["confirm"]:
            raise ValidationError({"confirm": [f"{label} needs confirm: true."]})
        task = VmTask.objects.create(vm=vm, action=what, argument=argument, actor=request.user)
        vsphere_tasks.publish_task(task)
        vsphere_tasks.run_vm_action.delay(task.pk)
        return Response(VmTaskSerializer(task).data, status=status.HTTP_202_ACCEPTED)


class VmTaskViewSet(viewsets.ReadOnlyModelViewSet):
    """Power and snapshot actions and how they went, for the VMs the caller sees."""

    serializer_class = VmTaskSerializer

    def get_queryset(self) -> QuerySet[VmTask]:
        return VmTask.objects.filter(vm__in=visible_vms(self.request.user)).select_related("actor")


# -- profiles and changes ---------------------------------------------------------------------------------


class ProfileSerializer(serializers.ModelSerializer):
    hosts = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    tags = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Profile
        fields = ["id", "project", "name", "description", "settings", "hosts", "tags", "created", "updated"]

    def validate_settings(self, value: Any) -> dict[str, Any]:
        # The same rules as the profile form and planning (hosts.changes.flow.validate_settings).
        try:
            return flow.validate_settings(value)
        except flow.ChangeError as exc:
            raise ValidationError([p.message for p in exc.problems] or [str(exc)]) from None


class PlanSerializer(serializers.Serializer):
    hosts = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=10_000,
        help_text="Only these of the profile's hosts (ids); all of them when left out.",
    )


class ChangeHostSerializer(serializers.ModelSerializer):
    host_name = serializers.CharField(source="host.name", read_only=True)
    diff = serializers.SerializerMethodField()

    class Meta:
        model = ChangeHost
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

    def get_diff(self, run: ChangeHost) -> str:
        # A rendered file that carries a secret (a private key) never leaves the server.
        return "".join(f.get("diff", "") for f in run.files if not f.get("secret"))


class ChangeSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.get_username", read_only=True, default=None)
    approved_by = serializers.CharField(source="approved_by.get_username", read_only=True, default=None)

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
        # Lists annotate it (one query for the page); a single change asks hosts.changes.flow.
        if hasattr(change, "average_progress"):
            return int(change.average_progress or 0)
        return flow.progress(change)


class ChangeDetailSerializer(ChangeSerializer):
    hosts = ChangeHostSerializer(many=True, read_only=True)

    class Meta(ChangeSerializer.Meta):
        fields = [*ChangeSerializer.Meta.fields, "hosts"]


class DecisionSerializer(serializers.Serializer):
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Why; kept in the audit trail."
    )


class ApplySerializer(serializers.Serializer):
    confirm = serializers.BooleanField(help_text="true: you have read the diffs.")


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
        targets = flow.hosts_of(profile)
        chosen = set(body.validated_data.get("hosts") or [])
        if chosen:
            strangers = chosen - {h.pk for h in targets}
            if strangers:
                raise ValidationError({"hosts": [f"Not hosts of this profile: {sorted(strangers)}."]})
            targets = [h for h in targets if h.pk in chosen]
        if not targets:
            raise ValidationError({"hosts": ["This profile has no hosts: assign hosts or tags first."]})
        try:
            change = flow.profile_change(profile, request.user)
        except flow.ChangeError as exc:
            # A profile stored before a rule existed: refused before any host is read.
            raise ValidationError({"settings": [p.message for p in exc.problems] or [str(exc)]}) from None
        change_tasks.plan_change.delay(change.pk, [h.pk for h in targets])
        return Response(ChangeSerializer(change).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(parameters=[OpenApiParameter("status", str, enum=list(ChangeStatus.values))])
)
class ChangeViewSet(StrictFilters, viewsets.ReadOnlyModelViewSet):
    """Changes: their status and per-host progress and diffs; approve, reject, apply."""

    parser_classes = JSON_ONLY

    filters: ClassVar[dict[str, str]] = {"status": ""}

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return ChangeSerializer if self.action == "list" else ChangeDetailSerializer

    def get_queryset(self) -> QuerySet[Change]:
        changes = Change.objects.filter(project__in=_visible_projects(self.request.user)).select_related(
            "created_by", "approved_by"
        )
        if self.action != "list":
            return changes.prefetch_related("hosts__host")
        params = self.filter_params(self.request)
        if "status" in params:
            if params["status"] not in ChangeStatus.values:
                raise ValidationError({"status": [f"One of {', '.join(ChangeStatus.values)}."]})
            changes = changes.filter(status=params["status"])
        return changes.annotate(average_progress=Avg("hosts__progress")).order_by("-created", "-pk")

    def _flow(self, needed: str, step: Any) -> Response:
        change = self.get_object()
        access.require(self.request.user, needed, change.project_id)
        try:
            step(change)
        except flow.ChangeError as exc:
            raise Conflict(str(exc)) from None
        change = self.get_queryset().get(pk=change.pk)
        return Response(ChangeDetailSerializer(change).data)

    def _decide(self, decide: Any) -> Response:
        body = DecisionSerializer(data=self.request.data or {})

        def step(change: Change) -> None:
            body.is_valid(raise_exception=True)  # after the access check: outsiders learn nothing
            decide(change, self.request.user, body.validated_data.get("comment", "").strip())

        return self._flow("change.approve", step)

    @extend_schema(request=DecisionSerializer, responses={200: ChangeDetailSerializer, 409: ERROR})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        return self._decide(flow.approve)

    @extend_schema(request=DecisionSerializer, responses={200: ChangeDetailSerializer, 409: ERROR})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        return self._decide(flow.reject)

    @extend_schema(request=ApplySerializer, responses={200: ChangeDetailSerializer, 409: ERROR})
    @action(detail=True, methods=["post"])
    def apply(self, request: Request, pk: str) -> Response:
        """Queue each host still to do as a task (backup, write, validate, restart, verify, roll back)."""
        body = ApplySerializer(data=request.data)

        def start(change: Change) -> None:
            body.is_valid(raise_exception=True)
            if not body.validated_data["confirm"]:
                raise ValidationError({"confirm": ["Confirm (true) that you have read the diffs."]})
            flow.start_apply(change, request.user)

        return self._flow("change.plan", start)
