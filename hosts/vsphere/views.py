"""vSphere: vCenters (Admins add them, confirming the certificate), the inventory, a VM's
page with its power and snapshot actions and its recent vSphere events.

Who sees a VM: Admins all of them; members of a project the VMs that are hosts of
that project (``vm.view``); a VM in no project is the Admins' alone. A VM someone
may not see is a 404, one they see but may not act on a 403.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib import messages
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hosts.models import Host, VCenter, VirtualMachine
from hosts.vsphere import announce as vsphere_announce
from hosts.vsphere import client as vsphere
from hosts.vsphere import links as vsphere_links
from hosts.vsphere import services as vsphere_services
from hosts.vsphere import tasks as vsphere_tasks
from hosts.vsphere.client import vm as vsphere_vm
from hosts.vsphere.forms import VCenterForm
from portal import access, audit
from portal.fields import decrypt, encrypt
from portal.http import AuthenticatedHttpRequest
from portal.queueing import QueueUnavailable
from portal.refused import Refused

PENDING = "vsphere_pending_vcenter"
EVENTS_SHOWN = 20


# --- vCenters -----------------------------------------------------------------------------


@require_GET
def vcenters(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "vcenter.manage")
    rows = VCenter.objects.select_related("auto_register_project")
    return render(request, "hosts/vsphere/vcenters.html", {"vcenters": rows})


def _check(
    url: str, username: str, password: str, expected: str
) -> tuple[vsphere.Certificate, dict[str, Any]]:
    """Fetch the certificate, log in trusting exactly it, and read what the form shows."""
    host, port = vsphere.endpoint(url)
    certificate = vsphere.fetch_certificate(host, port)
    if expected and certificate.thumbprint != expected:
        raise vsphere.CertificateMismatch(
            f"{host}:{port} presents a certificate with SHA-256 thumbprint {certificate.thumbprint}, "
            f"not the {expected} you entered. Refused: nothing was saved."
        )
    si = vsphere.connect_pinned(url, username, password, certificate.pem)
    try:
        return certificate, vsphere.about(si)
    finally:
        vsphere.disconnect(si)


@require_http_methods(["GET", "POST"])
def vcenter_add(request: HttpRequest) -> HttpResponse:
    """Step one: connect, show the certificate and what vCenter holds. Nothing is saved."""
    access.require(request.user, "vcenter.manage")
    form = VCenterForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            certificate, about = _check(data["url"], data["username"], data["password"], data["thumbprint"])
        except vsphere.VSphereError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - whatever vCenter answered, the person gets a message
            error = vsphere.describe_failure(exc)
        else:
            project = data["auto_register_project"]
            # Kept server-side between the two steps; the password only as ciphertext.
            request.session[PENDING] = {
                "name": data["name"],
                "url": data["url"],
                "username": data["username"],
                "password": encrypt(data["password"]),
                "pem": certificate.pem,
                "thumbprint": certificate.thumbprint,
                "project": project.pk if project else None,
            }
            return render(
                request,
                "hosts/vsphere/vcenter_confirm.html",
                {"pending": request.session[PENDING], "certificate": certificate, "about": about},
            )
    status = 400 if error else 200
    return render(request, "hosts/vsphere/vcenter_form.html", {"form": form, "error": error}, status=status)


@require_POST
def vcenter_confirm(request: HttpRequest) -> HttpResponse:
    """Step two: the person confirmed the thumbprint shown; check again, pin it, save."""
    access.require(request.user, "vcenter.manage")
    pending = request.session.get(PENDING)
    if not pending:
        messages.error(request, "Nothing to confirm: start again.")
        return redirect("hosts:vcenter_add")
    confirmed = request.POST.get("thumbprint", "")
    form = VCenterForm(
        initial={"name": pending["name"], "url": pending["url"], "username": pending["username"]}
    )
    if confirmed != pending["thumbprint"]:
        error = "The confirmed thumbprint is not the one shown. Refused: nothing was saved."
        return render(request, "hosts/vsphere/vcenter_form.html", {"form": form, "error": error}, status=400)
    password = decrypt(pending["password"])
    try:
        # The certificate must still be the one shown: the pin is checked on this connection too.
        si = vsphere.connect_pinned(pending["url"], pending["username"], password, pending["pem"])
        about = vsphere.about(si)
        vsphere.disconnect(si)
    except Exception as exc:  # noqa: BLE001 - shown to the person, nothing saved
        error = vsphere.describe_failure(exc)
        return render(request, "hosts/vsphere/vcenter_form.html", {"form": form, "error": error}, status=400)
    if VCenter.objects.filter(name=pending["name"]).exists():
        error = "A vCenter of that name exists already."
        return render(request, "hosts/vsphere/vcenter_form.html", {"form": form, "error": error}, status=400)
    vcenter = VCenter.objects.create(
        name=pending["name"],
        url=pending["url"],
        username=pending["username"],
        password=password,
        certificate=pending["pem"],
        thumbprint=pending["thumbprint"],
        auto_register_project_id=pending["project"],
        version=about["version"],
        connected=True,
    )
    del request.session[PENDING]
    audit.record(
        "vcenter.add",
        obj=vcenter,
        after={"url": vcenter.url, "user": vcenter.username, "thumbprint": vcenter.thumbprint, **about},
    )
    try:
        vsphere_services.request_sync(vcenter)
    except QueueUnavailable as exc:
        messages.warning(
            request, f"{vcenter.name} added; reading its VMs {exc.message[:1].lower()}{exc.message[1:]}"
        )
    else:
        messages.success(request, f"{vcenter.name} added: {about['vms']} VMs are being read.")
    return redirect("hosts:vcenters")


@require_POST
def vcenter_sync(request: HttpRequest, pk: int) -> HttpResponse:
    access.require(request.user, "vcenter.manage")
    vcenter = VCenter.objects.filter(pk=pk).first()
    if vcenter is None:
        raise Http404("No such vCenter.")
    try:
        messages.info(request, vsphere_services.request_sync(vcenter))
    except QueueUnavailable as exc:
        messages.error(request, f"Reading {vcenter.name} {exc.message[:1].lower()}{exc.message[1:]}")
    return redirect("hosts:vcenters")


# --- The inventory ------------------------------------------------------------------------


@require_GET
def inventory(request: HttpRequest) -> HttpResponse:
    """Datacenter, cluster, ESXi host, VMs: with counts and power states."""
    access.require(request.user, "portal.use")
    photon_only = request.GET.get("photon") == "1"
    query = request.GET.get("q", "").strip()[:100]
    vms = VirtualMachine.objects.visible_to(request.user).filter(gone=False)
    if photon_only:
        vms = vms.filter(is_photon=True)
    if query:
        vms = vms.filter(Q(name__icontains=query) | Q(ip_address__icontains=query))
    vms = vms.select_related("vcenter", "datacenter", "cluster", "esx_host", "host").order_by("name", "pk")
    tree, totals = _tree(vms)
    context = {
        "tree": tree,
        "totals": totals,
        "photon_only": photon_only,
        "q": query,
        "is_admin": access.is_admin(request.user),
        "live_topics": vsphere_announce.inventory_topics(request.user),
    }
    return render(request, "hosts/vsphere/inventory.html", context)


def _tree(vms: QuerySet[VirtualMachine]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Group VMs under vCenter > datacenter > cluster > ESXi host, counting on the way."""
    nested: dict[Any, Any] = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    totals = {"vms": 0, "on": 0, "photon": 0}
    for vm in vms:
        nested[vm.vcenter][vm.datacenter][vm.cluster][vm.esx_host].append(vm)
        totals["vms"] += 1
        totals["on"] += vm.powered_on
        totals["photon"] += vm.is_photon

    def counted(name: str, members: list[VirtualMachine], **extra: Any) -> dict[str, Any]:
        return {"name": name, "count": len(members), "on": sum(vm.powered_on for vm in members), **extra}

    def name_of(obj: Any) -> str:
        return obj.name if obj is not None else "(unplaced)"

    tree = []
    for vcenter, datacenters in sorted(nested.items(), key=lambda kv: kv[0].name):
        dcs = []
        for dc, clusters in sorted(datacenters.items(), key=lambda kv: name_of(kv[0])):
            cls = []
            for cluster, hosts in sorted(clusters.items(), key=lambda kv: name_of(kv[0])):
                esx = [
                    counted(name_of(h), vms, vms=vms, open=len(vms) <= 50)
                    for h, vms in sorted(hosts.items(), key=lambda kv: name_of(kv[0]))
                ]
                cls.append(counted(name_of(cluster), [vm for h in esx for vm in h["vms"]], hosts=esx))
            dcs.append(
                counted(name_of(dc), [vm for c in cls for h in c["hosts"] for vm in h["vms"]], clusters=cls)
            )
        tree.append({"name": vcenter.name, "datacenters": dcs})
    return tree, totals


# --- A VM ---------------------------------------------------------------------------------


def vm_topic(vm: VirtualMachine, user: Any) -> str:
    return vsphere_announce.page_topic(vm, user)


@require_GET
def vm_detail(request: HttpRequest, pk: int) -> HttpResponse:
    vm = VirtualMachine.objects.with_placement().get_or_404(request.user, pk)
    project = vm.host.project_id if vm.host is not None else None
    context = {
        "vm": vm,
        "tasks": vm.tasks.select_related("actor")[:20],
        "can_operate": access.can(request.user, "vm.operate", project),
        "actions": vsphere_services.action_buttons(vm),
        "vm_topic": vm_topic(vm, request.user),
        "link_candidates": link_candidates(vm) if access.is_admin(request.user) else [],
        "is_admin": access.is_admin(request.user),
    }
    return render(request, "hosts/vsphere/vm.html", context)


# --- Linking a VM to a portal host (Admins: the proof the sync cannot have) ---------------


def link_candidates(vm: VirtualMachine) -> list[Host]:
    """Hosts, in any project, whose name or address looks like this VM: what an Admin
    checks before confirming a link. Only suggestions: the sync never links on them."""
    if vm.host_id is not None or vm.gone:
        return []
    addresses = [a for a in [vm.ip_address, *(vm.ip_addresses or [])] if a]
    names = {n for n in (vm.name, vm.guest_hostname, vm.guest_hostname.split(".")[0]) if n}
    match = Q(name__in=names)
    for address in addresses:
        match |= Q(address__iexact=address) | Q(docker_url__icontains=f"//{address}:")
    return list(Host.objects.filter(match).select_related("project").order_by("project__name", "name")[:20])


@require_POST
def vm_link(request: HttpRequest, pk: int) -> HttpResponse:
    """An Admin confirms that this VM is that host: the VM joins the host's project."""
    access.require(request.user, "vm.link")
    vm = VirtualMachine.objects.filter(pk=pk).first()
    if vm is None:
        raise Http404("No such virtual machine.")
    raw = request.POST.get("host", "").strip()
    host = Host.objects.select_related("project").filter(pk=int(raw)).first() if raw.isdigit() else None
    if host is None:
        messages.error(request, "Choose the portal host this VM is (by its id); nothing was linked.")
        return redirect("hosts:vm", vm.pk)
    try:
        vsphere_links.link_vm(vm, host, actor=request.user)
    except vsphere_links.LinkError as exc:
        messages.error(request, str(exc))
        return redirect("hosts:vm", vm.pk)
    messages.success(request, f"{vm.name} is now host {host.name} of project {host.project}.")
    vsphere_announce.announce([vm.pk])
    return redirect("hosts:vm", vm.pk)


@require_POST
def vm_unlink(request: HttpRequest, pk: int) -> HttpResponse:
    """An Admin takes the VM out of its host's project (it becomes the Admins' alone)."""
    access.require(request.user, "vm.link")
    vm = VirtualMachine.objects.filter(pk=pk).first()
    if vm is None:
        raise Http404("No such virtual machine.")
    host = vsphere_links.unlink_vm(vm, actor=request.user)
    if host is None:
        messages.info(request, f"{vm.name} was not linked to a host.")
    else:
        messages.success(request, f"{vm.name} is no longer host {host.name} of project {host.project}.")
        vsphere_announce.announce([vm.pk])
    return redirect("hosts:vm", vm.pk)


@require_POST
def vm_action(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Start a power or snapshot action; destructive ones ask to be confirmed first."""
    vm = VirtualMachine.objects.with_placement().get_or_404(request.user, pk, "vm.operate")
    area = "hosts/vsphere/partials/action_area.html"
    try:
        task = vsphere_services.request_vm_action(
            vm,
            request.user,
            request.POST.get("action", ""),
            request.POST.get("argument", ""),
            confirmed=request.POST.get("confirmed") == "yes",
        )
    except vsphere_services.NeedsConfirmation as ask:
        shown = {s["moref"]: s["name"] for s in vm.snapshots}.get(ask.argument, ask.argument)
        action = request.POST.get("action", "")
        context = {"vm": vm, "action": action, "label": ask.label, "argument": ask.argument, "shown": shown}
        return render(request, "hosts/vsphere/partials/confirm_action.html", context)
    except Refused as exc:
        return render(request, area, {"message": exc.message, "level": "danger"}, status=exc.status)
    label = vsphere_tasks.ACTIONS[task.action][0]
    if request.htmx:
        return render(request, area, {"message": f"{label}: started.", "level": "info"})
    messages.info(request, f"{label}: started.")
    return redirect("hosts:vm", vm.pk)


@require_GET
def vm_events(request: HttpRequest, pk: int) -> HttpResponse:
    """The VM's recent vSphere events, asked of vCenter when the page shows them."""
    vm = VirtualMachine.objects.with_placement().get_or_404(request.user, pk)
    events: list[dict[str, Any]] = []
    error = ""
    try:
        with vsphere.session(vm.vcenter, timeout=15) as si:
            events = vsphere_vm.recent_events(si, vm.moref, EVENTS_SHOWN)
    except Exception as exc:  # noqa: BLE001 - the page shows why instead
        error = vsphere.describe_failure(exc)
    return render(request, "hosts/vsphere/partials/vm_events.html", {"events": events, "error": error})
