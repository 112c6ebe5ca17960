"""The REST API for vCenters, their VMs and VM tasks.

Thin, like the views: the same visibility and access rules as the UI, the same Celery
tasks for power and snapshot actions, audited where the UI audits.
"""

from __future__ import annotations

from typing import ClassVar

from django.db.models import Q, QuerySet
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.models import VCenter, VirtualMachine, VmTask
from hosts.vsphere import services as vsphere_services
from hosts.vsphere import tasks as vsphere_tasks
from portal import access
from portal.api_common import ERROR, JSON_ONLY, DetailSerializer, JsonSerializer, bool_filter
from portal.api_policy import TEXT, TYPED, StrictFilters

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
        return Response({"detail": vsphere_services.request_sync(vcenter)}, status=status.HTTP_202_ACCEPTED)


class VmSerializer(serializers.ModelSerializer):
    vcenter = serializers.CharField(source="vcenter.name", read_only=True)
    datacenter = serializers.CharField(
        source="datacenter.name", read_only=True, default=None, allow_null=True
    )
    cluster = serializers.CharField(source="cluster.name", read_only=True, default=None, allow_null=True)
    esx_host = serializers.CharField(source="esx_host.name", read_only=True, default=None, allow_null=True)

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
    actor = serializers.CharField(source="actor.get_username", read_only=True, default=None, allow_null=True)

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


class VmActionSerializer(JsonSerializer):
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
            OpenApiParameter("photon", bool, description="true: Photon OS VMs only; false: the others"),
            OpenApiParameter("power_state", str),
        ]
    )
)
class VmViewSet(StrictFilters, viewsets.ReadOnlyModelViewSet):
    """VMs: Admins all, members the VMs that are hosts of their projects (``vm.view``)."""

    parser_classes = JSON_ONLY

    serializer_class = VmSerializer
    filters: ClassVar[dict[str, str]] = {"q": TEXT, "photon": TYPED, "power_state": TEXT}

    def get_queryset(self) -> QuerySet[VirtualMachine]:
        vms = VirtualMachine.objects.visible_to(self.request.user).select_related(
            "vcenter", "datacenter", "cluster", "esx_host"
        )
        if self.action != "list":
            return vms
        params = self.filter_params(self.request)
        vms = vms.filter(gone=False)
        if "q" in params:
            q = params["q"][:100]
            vms = vms.filter(Q(name__icontains=q) | Q(ip_address__icontains=q))
        photon = bool_filter(params, "photon")
        if photon is not None:
            vms = vms.filter(is_photon=photon)
        if "power_state" in params:
            vms = vms.filter(power_state=params["power_state"])
        return vms.order_by("name", "pk")

    def get_object(self) -> VirtualMachine:
        pk = self.kwargs["pk"]
        return VirtualMachine.objects.with_placement().get_or_404(self.request.user, pk)

    @extend_schema(
        request=VmActionSerializer,
        responses={202: VmTaskSerializer, 409: ERROR},
        description="Power or snapshot action, run as a vSphere task; follow it at /api/vm-tasks/ID/.",
    )
    @action(detail=True, methods=["post"])
    def power(self, request: Request, pk: str) -> Response:
        vm = VirtualMachine.objects.with_placement().get_or_404(request.user, pk, "vm.operate")
        body = VmActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        task = vsphere_services.request_vm_action(
            vm,
            request.user,
            body.validated_data["action"],
            body.validated_data.get("argument", ""),
            confirmed=body.validated_data["confirm"],
        )
        return Response(VmTaskSerializer(task).data, status=status.HTTP_202_ACCEPTED)


class VmTaskViewSet(viewsets.ReadOnlyModelViewSet):
    """Power and snapshot actions and how they went, for the VMs the caller sees."""

    serializer_class = VmTaskSerializer

    def get_queryset(self) -> QuerySet[VmTask]:
        return VmTask.objects.filter(
            vm__in=VirtualMachine.objects.visible_to(self.request.user)
        ).select_related("actor")
