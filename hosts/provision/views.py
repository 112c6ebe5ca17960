"""Provisioning: the request form (Provisioner and above), a request's page with
per-VM progress streamed live, and the one public URL, where a new host enrolls.

A request someone may not see is a 404; a Viewer sees requests but the form
refuses them (403).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hosts.models import ProvisionedVm, ProvisionRequest
from hosts.provision import checks as provision_checks
from hosts.provision import cloud_config, enrollment, guidance, vm_state
from hosts.provision import flow as provision
from hosts.provision import kickstart as provision_kickstart
from hosts.provision import seed as provision_seed
from hosts.provision import services as provision_services
from hosts.provision import summary as provision_summary
from hosts.provision.forms import PLACEMENT_FIELDS, KickstartForm, ProvisionForm, allowed_vcenters
from hosts.vsphere import client as vsphere
from portal import access, public_url, throttle
from portal.http import AuthenticatedHttpRequest
from portal.refused import Refused


def _visible(request: HttpRequest, pk: int) -> ProvisionRequest:
    req = ProvisionRequest.objects.select_related("project", "requester").filter(pk=pk).first()
    if req is None or not access.can(request.user, "provision.view", req.project):
        raise Http404("no such request")
    return req


@require_GET
def requests_list(request: HttpRequest) -> HttpResponse:
    projects = access.projects(request.user, "provision.view")
    rows = ProvisionRequest.objects.filter(project__in=projects).select_related("project", "requester")
    # A request's status is its VMs' (provision_summary.summary): one query for every row's VMs.
    rows = rows.prefetch_related("vms")[:100]
    next_step = guidance.on_list(request.user)
    requests = [(req, provision_summary.summary(req)) for req in rows]
    context = {
        "requests": requests,
        "may_request": next_step is None,
        "next_steps": [next_step] if next_step else [],
        "may_set_quotas": access.can(request.user, "provision.quota"),
    }
    return render(request, "hosts/provision/list.html", context)


@require_http_methods(["GET", "POST"])
def request_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not access.projects(request.user, "provision.request").exists():
        raise PermissionDenied("not allowed: provision.request")
    source = request.POST if request.method == "POST" else request.GET
    vcenter_id = source.get("vcenter")
    if vcenter_id is None:
        only = list(allowed_vcenters(request.user).values_list("pk", flat=True)[:2])
        vcenter_id = only[0] if len(only) == 1 else None
    where, placement_error = provision_services.placement_for(request.user, vcenter_id)
    # The placement pickers are redrawn (htmx) as the vCenter and datacenter change.
    initial = {name: request.GET.get(name) for name in ("project", "template", "datacenter")}
    initial |= {name: request.GET.get(name) for name, _ in PLACEMENT_FIELDS}
    form = ProvisionForm(
        request.POST or None, user=request.user, placement=where, initial={**initial, "vcenter": vcenter_id}
    )
    context: dict[str, Any] = {"form": form, "placement_error": placement_error, "error": ""}
    if request.method == "GET" and request.htmx:
        return render(request, "hosts/provision/partials/placement.html", context)
    if request.method == "POST" and form.is_valid():
        try:
            requested = provision_services.request_hosts(
                request.user,
                form.cleaned_data,
                placement=form.placement_names(),
                enroll_base_url=public_url.base_url(request),
            )
        except Refused as refused:
            if refused.status == 403:
                raise PermissionDenied(refused.message) from None
            context["error"] = refused.message
        else:
            if requested.not_queued:
                # Recorded, then failed: its page shows each VM's reason.
                messages.error(request, requested.not_queued)
            return redirect("hosts:provision_request", pk=requested.request.pk)
    status = 400 if context["error"] or form.errors else 200
    context["next_steps"] = guidance.on_form(request.user, form.vcenters_without_templates)
    return render(request, "hosts/provision/form.html", context, status=status)


@require_GET
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    req = _visible(request, pk)
    if request.GET.get("rows"):
        return render(
            request, "hosts/provision/partials/vm_rows.html", {"vms": req.vms.select_related("host")}
        )
    return render(
        request,
        "hosts/provision/detail.html",
        {"req": req, "vms": req.vms.select_related("host"), "topic": vm_state.topic(req)},
    )


#: A new seed carries a new, working token: never for a VM that enrolled or was cancelled.
_NO_NEW_SEED = (ProvisionedVm.State.ENROLLED, ProvisionedVm.State.CANCELLED)


def _visible_vm(request: HttpRequest, pk: int) -> ProvisionedVm:
    pvm = ProvisionedVm.objects.select_related("request__project", "request__vcenter").filter(pk=pk).first()
    if pvm is None or not access.can(request.user, "provision.view", pvm.request.project):
        raise Http404("no such VM")
    access.require(request.user, "provision.request", pvm.request.project)
    return pvm


@require_http_methods(["GET", "POST"])
def vm_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """A VM that never enrolled: confirm, then power off and destroy it in vCenter."""
    pvm = _visible_vm(request, pk)
    error = ""
    if request.method == "POST":
        try:
            provision.delete_vm(pvm, request.user)
        except (provision_checks.ProvisionError, vsphere.VSphereError) as exc:
            error = str(exc)
        else:
            return redirect("hosts:provision_request", pk=pvm.request_id)
    return render(
        request,
        "hosts/provision/confirm_delete.html",
        {"pvm": pvm, "error": error},
        status=400 if error else 200,
    )


@require_http_methods(["GET", "POST"])
def vm_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """A VM not yet enrolled: confirm, then revoke its token; deleting its VM is offered next."""
    pvm = _visible_vm(request, pk)
    if not provision_services.may_cancel(request.user, pvm):
        raise PermissionDenied("not allowed: cancel another's request")
    error, status = "", 200
    if request.method == "POST":
        try:
            provision_services.cancel_vm(pvm, request.user)
        except Refused as refused:
            error, status = refused.message, refused.status
        else:
            messages.success(
                request, f"Provisioning {pvm.name} cancelled: its enrollment token no longer works."
            )
            if pvm.moref and pvm.request.vcenter_id:
                return redirect("hosts:provision_vm_delete", pk=pvm.pk)
            return redirect("hosts:provision_request", pk=pvm.request_id)
    return render(request, "hosts/provision/confirm_cancel.html", {"pvm": pvm, "error": error}, status=status)


@require_POST
def vm_seed_iso(request: HttpRequest, pk: int) -> HttpResponse:
    """A NoCloud seed ISO for this VM (a new token and certificate: any earlier seed stops working)."""
    pvm = _visible_vm(request, pk)
    if pvm.state in _NO_NEW_SEED:
        raise Http404("already enrolled or cancelled")
    files = provision_seed.seed_for(pvm, public_url.base_url(request))
    response = HttpResponse(cloud_config.seed_iso(files), content_type="application/x-iso9660-image")
    response["Content-Disposition"] = f'attachment; filename="{pvm.name}-seed.iso"'
    return response


@require_http_methods(["GET", "POST"])
def kickstart_new(request: HttpRequest) -> HttpResponse:
    """A one-time kickstart URL for Photon's installer (``ks=...``); shown once."""
    if not access.projects(request.user, "provision.request").exists():
        raise PermissionDenied("not allowed: provision.request")
    form = KickstartForm(request.POST or None, user=request.user)
    error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        access.require(request.user, "provision.request", data["project"])
        profile = (
            data["profile"] if data["profile"] and data["profile"].project_id == data["project"].pk else None
        )
        try:
            with transaction.atomic():
                pvm, token = provision_kickstart.new_kickstart(
                    data["project"], data["name"], request.user, profile
                )
        except provision_checks.ProvisionError as exc:
            error = str(exc)
        else:
            ks_url = public_url.absolute(request, reverse("hosts:provision_kickstart", args=[token]))
            return render(request, "hosts/provision/kickstart_url.html", {"pvm": pvm, "ks_url": ks_url})
    status = 400 if error or form.errors else 200
    return render(
        request, "hosts/provision/kickstart_form.html", {"form": form, "error": error}, status=status
    )


@require_POST
def vm_seed_attach(request: HttpRequest, pk: int) -> HttpResponse:
    """For a VM that cannot take guestinfo: upload a seed ISO beside it and attach it as its CD-ROM."""
    pvm = _visible_vm(request, pk)
    if pvm.state in _NO_NEW_SEED or not pvm.moref or pvm.request.vcenter is None:
        raise Http404("no VM to attach a seed to")
    try:
        iso = cloud_config.seed_iso(provision_seed.seed_for(pvm, public_url.base_url(request)))
        with vsphere.session(pvm.request.vcenter) as si:
            file_name = provision_seed.attach_seed_iso(pvm, si, iso)
    except (provision_checks.ProvisionError, vsphere.VSphereError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Seed ISO attached to {pvm.name}: {file_name}")
    return redirect("hosts:provision_request", pk=pvm.request_id)


@login_not_required  # Photon's installer has no account: the one-time token is its credential
@require_GET
@throttle.per_address("kickstart", "THROTTLE_KICKSTART")
def kickstart(request: HttpRequest, token: str) -> HttpResponse:
    try:
        config = provision_kickstart.kickstart_for(token, public_url.base_url(request))
    except enrollment.EnrollmentRefused as exc:
        return JsonResponse({"error": str(exc)}, status=403)
    response = JsonResponse(config)
    response["Cache-Control"] = "no-store"
    return response


@login_not_required  # the new host has no account: the one-time token is its credential
@csrf_exempt  # cloud-init's phone_home posts a plain form, with no session and no CSRF token
@require_POST
@throttle.per_address("enroll", "THROTTLE_ENROLL")
def enroll(request: HttpRequest, token: str) -> HttpResponse:
    # The peer, never X-Forwarded-For: enrollment binds it only if vCenter confirms it.
    address = request.META.get("REMOTE_ADDR", "")
    try:
        host = enrollment.enroll(token, request.POST, address)
    except enrollment.EnrollmentRefused as exc:
        return JsonResponse({"enrolled": False, "error": str(exc)}, status=403)
    return JsonResponse({"enrolled": True, "host": host.name})
