"""Provisioning: the request form (Provisioner and above), a request's page with
per-VM progress streamed live, and the one public URL, where a new host enrolls.

A request someone may not see is a 404; a Viewer sees requests but the form
refuses them (403).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hosts.changes.desired import settings_problems
from hosts.models import Profile, ProvisionedVm, ProvisionQuota, ProvisionRequest, VCenter, VirtualMachine
from hosts.provision import checks as provision_checks
from hosts.provision import cloud_config, enrollment, vm_state
from hosts.provision import flow as provision
from hosts.provision import kickstart as provision_kickstart
from hosts.provision import seed as provision_seed
from hosts.provision import services as provision_services
from hosts.provision import summary as provision_summary
from hosts.vsphere import client as vsphere
from hosts.vsphere import placement
from hosts.vsphere.placement import Placement
from portal import access, public_url, throttle
from portal.http import AuthenticatedHttpRequest
from portal.models import Project

#: The form's placement pickers: (field, Placement section).
PLACEMENT_FIELDS = (
    ("resource_pool", "pools"),
    ("folder", "folders"),
    ("network", "networks"),
    ("datastore", "datastores"),
)
AS_TEMPLATE = ("", "As the template")


def _allowed_vcenters(user: Any) -> Any:
    """The vCenters of the quotas of the projects ``user`` may provision in."""
    projects = access.projects(user, "provision.request")
    through = ProvisionQuota.vcenters.through.objects.filter(provisionquota__project__in=projects)
    return VCenter.objects.filter(enabled=True, pk__in=through.values("vcenter_id")).order_by("name")


def _allowed_profile(profile: Profile | None) -> Profile | None:
    """A profile written into a new host's first boot obeys the same rules as a change."""
    problems = settings_problems(profile.settings) if profile is not None else []
    if problems:
        reasons = "; ".join(p.message for p in problems)
        raise forms.ValidationError(f"Profile {profile} is refused: {reasons}. Edit the profile first.")
    return profile


class TemplateField(forms.ModelChoiceField):
    """Offers the templates; accepts any VM of the allowed vCenters, so that the form's
    ``clean`` says why a VM that is not offered (a host's VM, a forged id) is refused,
    rather than Django's "not one of the available choices"."""

    lookup: Any = None

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values or self.lookup is None:
            return super().to_python(value)
        offered = self.queryset
        self.queryset = self.lookup
        try:
            return super().to_python(value)
        finally:
            self.queryset = offered


class ProvisionForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    vcenter = forms.ModelChoiceField(queryset=VCenter.objects.none(), label="vCenter")
    template = TemplateField(
        queryset=VirtualMachine.objects.none(),
        help_text="A Photon OS template (marked so in vSphere, or listed on the project's quota).",
    )
    datacenter = forms.ChoiceField(required=False, help_text="Narrows the choices below.")
    resource_pool = forms.ChoiceField(required=False, label="Cluster / resource pool")
    folder = forms.ChoiceField(required=False, label="VM folder")
    network = forms.ChoiceField(required=False, help_text="For the first network adapter.")
    datastore = forms.ChoiceField(required=False)
    cpus = forms.IntegerField(min_value=1, max_value=64, initial=2, label="CPUs")
    memory_mb = forms.IntegerField(min_value=256, max_value=1048576, initial=2048, label="Memory (MB)")
    count = forms.IntegerField(min_value=1, max_value=provision_checks.MAX_COUNT, initial=1, label="How many")
    name_pattern = forms.CharField(max_length=60, initial="photon-{n}", help_text="{n} counts from 1.")
    profile = forms.ModelChoiceField(queryset=Profile.objects.none(), required=False)

    def __init__(self, *args: Any, user: Any, placement: Placement | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.placement = placement
        projects = access.projects(user, "provision.request")
        vcenters = _allowed_vcenters(user)
        self.fields["project"].queryset = projects  # type: ignore[attr-defined]
        self.fields["vcenter"].queryset = vcenters  # type: ignore[attr-defined]
        choices = provision_checks.template_choices(projects, vcenters)
        self.fields["template"].queryset = choices.order_by("name")  # type: ignore[attr-defined]
        self.fields["template"].lookup = VirtualMachine.objects.filter(vcenter__in=vcenters, gone=False)  # type: ignore[attr-defined]
        self.fields["profile"].queryset = Profile.objects.filter(project__in=projects)  # type: ignore[attr-defined]
        datacenter = str((self.data if self.is_bound else self.initial).get("datacenter") or "")
        datacenters = sorted(placement.datacenters.items(), key=lambda dc: dc[1]) if placement else []
        self.fields["datacenter"].choices = [("", "Any"), *datacenters]  # type: ignore[attr-defined]
        redraw = {
            "hx-get": reverse("hosts:provision_new"),
            "hx-include": "closest form",
            "hx-target": "#placement",
            "hx-swap": "outerHTML",
            # A later pick wins: an earlier redraw still under way is dropped.
            "hx-sync": "closest form:replace",
        }
        self.fields["vcenter"].widget.attrs.update(redraw)
        self.fields["datacenter"].widget.attrs.update(redraw)
        for name, section in PLACEMENT_FIELDS:
            groups = placement.grouped(section, datacenter) if placement else []
            self.fields[name].choices = [AS_TEMPLATE, *groups]  # type: ignore[attr-defined]

    def placement_fields(self) -> list[forms.BoundField]:
        return [self["datacenter"], *(self[name] for name, _ in PLACEMENT_FIELDS)]

    def clean_profile(self) -> Profile | None:
        return _allowed_profile(self.cleaned_data.get("profile"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        vcenter, template, project = data.get("vcenter"), data.get("template"), data.get("project")
        if vcenter and template and template.vcenter_id != vcenter.pk:
            self.add_error("template", "That VM is in another vCenter.")
        elif project and template:
            try:
                provision_checks.check_template(
                    ProvisionRequest(project=project, vcenter=template.vcenter, template=template.moref)
                )
            except provision_checks.ProvisionError as exc:
                self.add_error("template", str(exc))
        if (
            vcenter
            and project
            and not ProvisionQuota.objects.filter(project=project, vcenters=vcenter).exists()
        ):
            self.add_error("vcenter", f"Project {project} may not clone in this vCenter.")
        profile = data.get("profile")
        if profile and project and profile.project_id != project.pk:
            self.add_error("profile", "That profile belongs to another project.")
        if data.get("name_pattern") and data.get("count"):
            try:
                provision_checks.expand_names(data["name_pattern"], data["count"])
            except provision_checks.ProvisionError as exc:
                self.add_error("name_pattern", str(exc))
        if self.placement is not None and template is not None:
            self._check_placement(self.placement, data, template)
        return data

    def _check_placement(self, placement: Placement, data: dict[str, Any], template: VirtualMachine) -> None:
        """One datacenter for everything chosen; a datastore and network the cluster reaches."""
        chosen = {
            name: placement.find(section, data[name]) for name, section in PLACEMENT_FIELDS if data.get(name)
        }
        datacenters = {place.datacenter for place in chosen.values() if place}
        if data.get("datacenter"):
            datacenters.add(data["datacenter"])
        if len(datacenters) > 1:
            raise forms.ValidationError("The pool, folder, network and datastore must be in one datacenter.")
        pool = chosen.get("resource_pool")
        if pool is not None:
            reach = placement.reach.get(pool.compute, set())
            cluster = placement.computes.get(pool.compute, "the cluster")
            for name in ("network", "datastore"):
                place = chosen.get(name)
                if place is not None and place.moref not in reach:
                    self.add_error(name, f"The hosts of {cluster} do not reach {place.label}.")
        target = next(iter(datacenters), "")
        template_dc = template.datacenter.moref if template.datacenter_id else ""  # type: ignore[union-attr]
        if target and target != template_dc:
            # Into another datacenter nothing can be "as the template": a pool and a
            # datastore there, and a folder there (its VM folder unless one was picked).
            where = placement.datacenters.get(target, target)
            for name in ("resource_pool", "datastore"):
                if not data.get(name):
                    self.add_error(name, f"The template is in another datacenter: pick one in {where}.")
            if not data.get("folder"):
                data["folder"] = placement.vm_roots.get(target, "")

    def placement_names(self) -> dict[str, str]:
        """What the request page shows of the placement, and the network's kind for the clone."""
        data, placement = self.cleaned_data, self.placement
        if placement is None:
            return {}
        names: dict[str, str] = {}
        for name, section in PLACEMENT_FIELDS:
            place = placement.find(section, data.get(name) or "")
            if place is not None:
                names[name] = place.label
                names["datacenter"] = placement.datacenters.get(place.datacenter, "")
                if name == "network":
                    names["network_kind"] = place.kind
        return names


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
    may_request = access.projects(request.user, "provision.request").exists()
    requests = [(req, provision_summary.summary(req)) for req in rows]
    return render(request, "hosts/provision/list.html", {"requests": requests, "may_request": may_request})


def _placement_for(user: Any, vcenter_id: Any) -> tuple[Placement | None, str]:
    """The placement of a vCenter ``user`` may clone in, or why there is none to offer."""
    vcenter = _allowed_vcenters(user).filter(pk=vcenter_id).first() if str(vcenter_id).isdigit() else None
    if vcenter is None:
        return None, ""
    try:
        return placement.for_vcenter(vcenter), ""
    except vsphere.VSphereError as exc:
        return None, f"The clusters, folders, networks and datastores of {vcenter} could not be read: {exc}"


@require_http_methods(["GET", "POST"])
def request_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not access.projects(request.user, "provision.request").exists():
        raise PermissionDenied("not allowed: provision.request")
    source = request.POST if request.method == "POST" else request.GET
    vcenter_id = source.get("vcenter")
    if vcenter_id is None:
        only = list(_allowed_vcenters(request.user).values_list("pk", flat=True)[:2])
        vcenter_id = only[0] if len(only) == 1 else None
    where, placement_error = _placement_for(request.user, vcenter_id)
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
        data = form.cleaned_data
        access.require(request.user, "provision.request", data["project"])
        req = ProvisionRequest(
            project=data["project"],
            requester=request.user,
            vcenter=data["vcenter"],
            template=data["template"].moref,
            template_name=data["template"].name,
            resource_pool=data["resource_pool"],
            folder=data["folder"],
            network=data["network"],
            datastore=data["datastore"],
            placement=form.placement_names(),
            cpus=data["cpus"],
            memory_mb=data["memory_mb"],
            count=data["count"],
            name_pattern=data["name_pattern"].strip().lower(),
            profile=data["profile"],
        )
        try:
            with vsphere.session(data["vcenter"]) as si, transaction.atomic():
                req.save()
                provision_services.start(req, enroll_base_url=public_url.base_url(request), si=si)
        except (provision_checks.ProvisionError, vsphere.VSphereError) as exc:
            context["error"] = str(exc)
        else:
            return redirect("hosts:provision_request", pk=req.pk)
    status = 400 if context["error"] or form.errors else 200
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


@require_POST
def vm_seed_iso(request: HttpRequest, pk: int) -> HttpResponse:
    """A NoCloud seed ISO for this VM (a new token and certificate: any earlier seed stops working)."""
    pvm = _visible_vm(request, pk)
    if pvm.state == ProvisionedVm.State.ENROLLED:
        raise Http404("already enrolled")
    files = provision_seed.seed_for(pvm, public_url.base_url(request))
    response = HttpResponse(cloud_config.seed_iso(files), content_type="application/x-iso9660-image")
    response["Content-Disposition"] = f'attachment; filename="{pvm.name}-seed.iso"'
    return response


class KickstartForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    name = forms.CharField(max_length=63, help_text="The new host's name.")
    profile = forms.ModelChoiceField(queryset=Profile.objects.none(), required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        projects = access.projects(user, "provision.request")
        self.fields["project"].queryset = projects  # type: ignore[attr-defined]
        self.fields["profile"].queryset = Profile.objects.filter(project__in=projects)  # type: ignore[attr-defined]

    def clean_profile(self) -> Profile | None:
        return _allowed_profile(self.cleaned_data.get("profile"))


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
    if pvm.state == ProvisionedVm.State.ENROLLED or not pvm.moref or pvm.request.vcenter is None:
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
