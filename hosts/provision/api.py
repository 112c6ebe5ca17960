"""The REST API for provisioning (issue 20): the requests someone sees, a new request for
hosts cloned from a Photon template, and cancelling a VM still waiting for enrollment.

As the provisioning pages: a request is checked by the request form's rules
(``ProvisionForm``, with the vCenter's placement read live as the page reads it), then
saved and started by the service the page calls (``services.request_hosts``: the quota,
the names, the template, vCenter's answers); a cancel is ``services.cancel_vm``. A request
someone may not see is a 404; a Viewer sees requests, and is refused the rest (403).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.fleet.adding import refuse_invalid
from hosts.models import ProvisionedVm, ProvisionRequest
from hosts.provision import services, summary
from hosts.provision.checks import MAX_COUNT
from hosts.provision.forms import PLACEMENT_FIELDS, ProvisionForm
from portal import access, public_url
from portal.api_common import ERROR, JSON_ONLY, MAX_ID, JsonSerializer, int_filter
from portal.api_policy import TYPED, StrictFilters
from portal.models import Project
from portal.refused import Refused

#: The placement pickers of the request form, as moref strings (the page's choices).
PLACEMENT = ("datacenter", *(name for name, _ in PLACEMENT_FIELDS))


class ProvisionedVmSerializer(serializers.ModelSerializer):
    # Values without labels: an enum of its own in the schema.
    state = serializers.ChoiceField(choices=ProvisionedVm.State.values, read_only=True)

    class Meta:
        model = ProvisionedVm
        # Tokens, keys and fingerprints are never part of an answer.
        fields = ["id", "name", "state", "detail", "moref", "host", "waiting_since", "updated"]


class ProvisionRequestSerializer(serializers.ModelSerializer):
    requester = serializers.CharField(
        source="requester.get_username", read_only=True, default=None, allow_null=True
    )
    status = serializers.SerializerMethodField(help_text="running, done, failed or partial: told by its VMs.")
    progress = serializers.SerializerMethodField(help_text="0 to 100: the mean of its VMs' progress.")
    vms = ProvisionedVmSerializer(many=True, read_only=True)

    class Meta:
        model = ProvisionRequest
        fields = [
            "id",
            "project",
            "requester",
            "vcenter",
            "template",
            "template_name",
            "placement",
            "cpus",
            "memory_mb",
            "count",
            "name_pattern",
            "profile",
            "created",
            "status",
            "progress",
            "vms",
        ]

    def get_status(self, req: ProvisionRequest) -> str:
        return summary.summary(req).status

    def get_progress(self, req: ProvisionRequest) -> int:
        return summary.summary(req).progress


def _id(help_text: str, **kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text=help_text, **kwargs)


def _place(help_text: str) -> serializers.CharField:
    return serializers.CharField(
        max_length=255, required=False, allow_blank=True, default="", help_text=help_text
    )


class ProvisionRequestCreateSerializer(JsonSerializer):
    """The request form's fields; the form's own bounds."""

    project = _id("A project where you are a Provisioner or Project admin.")
    vcenter = _id("A vCenter on the project's provisioning quota.")
    template = _id(
        "The template VM's id (/api/vms/): a Photon OS VM marked as a template in vSphere, "
        "or listed on the project's quota."
    )
    datacenter = _place("Datacenter moref: narrows the choices below; empty: as the template.")
    resource_pool = _place("Cluster or resource pool moref; empty: as the template.")
    folder = _place("VM folder moref; empty: as the template.")
    network = _place("Network moref for the first adapter; empty: as the template.")
    datastore = _place("Datastore moref; empty: as the template.")
    cpus = serializers.IntegerField(min_value=1, max_value=64, default=2)
    memory_mb = serializers.IntegerField(min_value=256, max_value=1048576, default=2048)
    count = serializers.IntegerField(min_value=1, max_value=MAX_COUNT, default=1, help_text="How many hosts.")
    name_pattern = serializers.CharField(
        max_length=60,
        default="photon-{n}",
        help_text="{n} counts from 1 (needed when count > 1); each name lowercase letters, digits and -.",
    )
    profile = _id("A profile of the project, written into each new host's first boot.", required=False)


def _visible(user: Any, pk: str) -> ProvisionRequest:
    """The request ``pk`` if ``user`` sees it (``provision.view``), else a 404."""
    if not (pk.isascii() and pk.isdigit() and 1 <= int(pk) <= MAX_ID):
        raise Http404("No such request.")
    req = ProvisionRequest.objects.select_related("project", "requester").filter(pk=int(pk)).first()
    if req is None or not access.can(user, "provision.view", req.project):
        raise Http404("No such request.")
    return req


#: What the request form is handed: every field of the body.
FORM_FIELDS = tuple(ProvisionRequestCreateSerializer().fields)

VM_PATH = OpenApiParameter("vm_id", int, OpenApiParameter.PATH, description="the VM's id in the request")


@extend_schema_view(
    list=extend_schema(parameters=[OpenApiParameter("project", int, description="Only this project's.")]),
)
class ProvisionRequestViewSet(StrictFilters, viewsets.ReadOnlyModelViewSet):
    """Provisioning requests in the caller's projects (``provision.view``); new ones
    (``provision.request``), and their VMs cancelled before they enroll."""

    parser_classes = JSON_ONLY
    serializer_class = ProvisionRequestSerializer
    filters: ClassVar[dict[str, str]] = {"project": TYPED}

    def get_queryset(self) -> QuerySet[ProvisionRequest]:
        projects = access.projects(self.request.user, "provision.view")
        rows = ProvisionRequest.objects.filter(project__in=projects).select_related("requester")
        rows = rows.prefetch_related("vms")
        if self.action == "list":
            project = int_filter(self.filter_params(self.request), "project")
            if project is not None:
                rows = rows.filter(project=project)
        return rows.order_by("-created", "-pk")

    def get_object(self) -> ProvisionRequest:
        return _visible(self.request.user, str(self.kwargs["pk"]))

    @extend_schema(
        request=ProvisionRequestCreateSerializer,
        responses={201: ProvisionRequestSerializer, 502: ERROR, 503: ERROR},
        description="Request new hosts, as the provisioning form: checked before any clone "
        "(quota, names, template, placement), then cloned by a task; follow its VMs here.",
    )
    def create(self, request: Request) -> Response:
        body = ProvisionRequestCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        given: dict[str, Any] = body.validated_data
        services.require_may_request(request.user, Project.objects.filter(pk=given["project"]).first())
        where, unreadable = services.placement_for(request.user, given["vcenter"])
        if unreadable and any(given[name] for name in PLACEMENT):
            raise Refused(unreadable, status=502)
        # The page's form: every rule of the request form, on the same inputs as strings.
        fields = {name: given.get(name) for name in FORM_FIELDS}
        form = ProvisionForm(
            {name: "" if value is None else str(value) for name, value in fields.items()},
            user=request.user,
            placement=where,
        )
        refuse_invalid(form)
        requested = services.request_hosts(
            request.user,
            form.cleaned_data,
            placement=form.placement_names(),
            enroll_base_url=public_url.base_url(request),
        )
        if requested.not_queued:
            # Recorded with its VMs failed, as the page shows it: the caller is told why.
            raise Refused(requested.not_queued, status=503)
        req = self.get_queryset().get(pk=requested.request.pk)
        return Response(ProvisionRequestSerializer(req).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="provision_requests_vm_cancel",
        request=None,
        parameters=[VM_PATH],
        responses={200: ProvisionRequestSerializer, 409: ERROR},
        description="Cancel a VM still waiting for enrollment: its token stops working at once. "
        "Whoever requested it, or a Project admin.",
    )
    @action(detail=True, methods=["post"], url_path=r"vms/(?P<vm_id>[^/.]+)/cancel", url_name="vm-cancel")
    def vm_cancel(self, request: Request, pk: str, vm_id: str) -> Response:
        req = self.get_object()
        pvm = (
            req.vms.select_related("request__project").filter(pk=int(vm_id)).first()
            if vm_id.isascii() and vm_id.isdigit() and 1 <= int(vm_id) <= MAX_ID
            else None
        )
        if pvm is None:
            raise Http404("No such VM in this request.")
        services.cancel_vm(pvm, request.user)
        return Response(ProvisionRequestSerializer(self.get_queryset().get(pk=req.pk)).data)
