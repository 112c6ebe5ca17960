"""The fleet: the hosts dashboard, adding and editing hosts, a host's page, container actions, deploy.

Every view asks portal.access. A host in a project the user cannot see is a 404
(its existence is not revealed); one the user sees but may not act on is a 403.
What an engine returns is only ever rendered through autoescaping templates.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hosts.fleet import adding, container_rows, engine, host_parts, rows, services, status
from hosts.fleet import containers as engine_containers
from hosts.fleet.forms import DeployForm, HostForm
from hosts.models import Host, HostStatus, PendingCve, Tag
from hosts.models.patches import cve_id
from portal import access, audit
from portal.models import Event, Project
from portal.refused import Refused

PAGE_SIZE = 50
SORTS = {
    "name": "name",
    "-name": "-name",
    "status": "status",
    "-status": "-status",
    "project": "project__name",
    "-project": "-project__name",
    "running": "containers_running",
    "-running": "-containers_running",
    "engine": "engine_version",
    "-engine": "-engine_version",
}


class _CountedPaginator(Paginator):
    """A paginator told its count (the project counters' total) rather than counting the fleet."""

    def __init__(self, object_list: Any, per_page: int, count: int) -> None:
        super().__init__(object_list, per_page)
        self.known_count = count

    @cached_property
    def count(self) -> int:
        return self.known_count


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    projects = list(access.projects(request.user, "host.view").only("pk", "name"))
    project_ids = [p.pk for p in projects]
    is_admin = access.is_admin(request.user)
    hosts = Host.objects.all() if is_admin else Host.objects.filter(project_id__in=project_ids)
    summary = status.fleet_summary(request.user, project_ids)
    totals, project_counts = summary["totals"], summary["project_counts"]

    query = request.GET.get("q", "").strip()[:100]
    wanted_status = request.GET.get("status", "")
    wanted_project = request.GET.get("project", "")
    wanted_tag = request.GET.get("tag", "").strip()[:60]
    sort = request.GET.get("sort", "name")
    asked_cve = request.GET.get("cve", "").strip()[:50]
    wanted_cve = cve_id(asked_cve) if asked_cve else None
    cve_error = (
        "" if wanted_cve or not asked_cve else f"“{asked_cve}” is not a CVE id (such as CVE-2026-12345)."
    )
    unfiltered = not (
        query or wanted_status in HostStatus.values or wanted_project.isdigit() or wanted_tag or asked_cve
    )
    filtered = hosts
    if query:
        filtered = filtered.filter(
            Q(name__icontains=query) | Q(docker_url__icontains=query) | Q(os_name__icontains=query)
        )
    if wanted_status in HostStatus.values:
        filtered = filtered.filter(status=wanted_status)
    if wanted_project.isdigit():
        filtered = filtered.filter(project_id=int(wanted_project))
    if wanted_tag:
        filtered = filtered.filter(tags__name=wanted_tag)
    if wanted_cve:
        # Hosts with a pending advisory fixing it (hosts.patches): an index probe per host.
        filtered = filtered.filter(Exists(PendingCve.objects.filter(cve=wanted_cve, host_id=OuterRef("pk"))))
    elif cve_error:
        filtered = filtered.none()
    shown = rows.page(filtered).order_by(SORTS.get(sort, "name"), "pk")
    if unfiltered:
        # No filter: the page count is the counters' total, not a count of the fleet.
        paginator: Paginator = _CountedPaginator(shown, PAGE_SIZE, totals["total"])
    else:
        paginator = Paginator(shown, PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))

    # The tags in use on hosts the user sees: each tag asks whether one such host has it (an index
    # probe), rather than collecting the tags of every host.
    tagged = Host.tags.through.objects.filter(tag_id=OuterRef("pk"))
    if not is_admin:
        tagged = tagged.filter(host__project_id__in=project_ids)
    tags = Tag.objects.filter(Exists(tagged)).order_by("name").values_list("name", flat=True)[:200]

    params = request.GET.copy()
    params.pop("page", None)
    sort_params = params.copy()
    sort_params.pop("sort", None)
    return render(
        request,
        "hosts/index.html",
        {
            "page": page,
            "projects": projects,
            "tags": tags,
            "statuses": HostStatus.choices,
            "filters": {
                "q": query,
                "status": wanted_status,
                "project": wanted_project,
                "tag": wanted_tag,
                "cve": wanted_cve or asked_cve,
            },
            "cve_error": cve_error,
            "sort": sort,
            "query_string": params.urlencode(),
            "sort_query": sort_params.urlencode(),
            "totals": totals,
            "project_counts": project_counts,
            "live_topics": summary["live_topics"],
            "can_add": is_admin or access.projects(request.user, "host.manage").exists(),
        },
        status=400 if cve_error else 200,
    )


# -- adding and editing ------------------------------------------------------------------------------


def _form_page(request: HttpRequest, form: HostForm, host: Host | None) -> HttpResponse:
    return render(request, "hosts/fleet/host_form.html", {"form": form, "host": host})


@require_http_methods(["GET", "POST"])
def host_add(request: HttpRequest) -> HttpResponse:
    if not (access.is_admin(request.user) or access.projects(request.user, "host.manage").exists()):
        raise PermissionDenied("not allowed: host.manage")
    form = HostForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        saved = _verify_and_save(request, form)
        if saved is not None:
            return redirect("hosts:host", pk=saved.pk)
    return _form_page(request, form, None)


@require_http_methods(["GET", "POST"])
def host_edit(request: HttpRequest, pk: int) -> HttpResponse:
    host = Host.objects.select_related("project").get_or_404(request.user, pk, "host.manage")
    form = HostForm(request.POST or None, instance=host, user=request.user)
    if request.method == "POST" and form.is_valid():
        saved = _verify_and_save(request, form)
        if saved is not None:
            return redirect("hosts:host", pk=saved.pk)
    return _form_page(request, form, host)


def _verify_and_save(request: HttpRequest, form: HostForm) -> Host | None:
    """Save only what was verified (hosts.fleet.adding); a refusal goes on the form."""
    creating = form.instance.pk is None
    try:
        host = adding.save_host(form, request.user)
    except Refused as refused:
        form.add_error(refused.field or None, refused.message)
        return None
    messages.success(request, f"Host {host.name} {'added' if creating else 'saved'}.")
    return host


@require_POST
def host_verify(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Verify (htmx): connect with what the form holds and show what answers, without saving."""
    host = Host.objects.select_related("project").get_or_404(request.user, pk, "host.manage") if pk else None
    if host is None and not (access.is_admin(request.user) or access.projects(request.user, "host.manage")):
        raise PermissionDenied("not allowed: host.manage")
    form = HostForm(request.POST, instance=host, user=request.user)
    context: dict[str, Any] = {"form": form}
    if form.is_valid():
        try:
            context["verification"] = adding.verify_new(form)
        except Refused as refused:
            context["error"] = refused.message
    else:
        context["error"] = " ".join(str(e) for errors in form.errors.values() for e in errors)
    return render(request, "hosts/fleet/verify_result.html", context)


@require_POST
def host_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    host = Host.objects.select_related("project").get_or_404(request.user, pk, "host.manage")
    host.enabled = not host.enabled
    host.status = HostStatus.UNKNOWN if host.enabled else HostStatus.DISABLED
    host.failures = 0
    host.save(update_fields=["enabled", "status", "failures", "updated"])
    audit.record("host.enable" if host.enabled else "host.disable", obj=host, project=host.project)
    status.publish(host)
    messages.success(request, f"Host {host.name} {'enabled' if host.enabled else 'disabled'}.")
    return redirect("hosts:host", pk=host.pk)


@require_http_methods(["GET", "POST"])
def host_delete(request: HttpRequest, pk: int) -> HttpResponse:
    host = Host.objects.select_related("project").get_or_404(request.user, pk, "host.manage")
    if request.method == "POST":
        audit.record("host.remove", obj=host, project=host.project, before={"docker_url": host.docker_url})
        name = host.name
        host.delete()
        messages.success(request, f"Host {name} removed from the portal (nothing on it was changed).")
        return redirect("hosts:index")
    return render(request, "hosts/fleet/confirm.html", {"host": host, "what": f"host {host.name}"})


# -- a host's page -------------------------------------------------------------------------------------


@require_GET
def host_detail(request: HttpRequest, pk: int) -> HttpResponse:
    host = Host.objects.select_related("project").get_or_404(request.user, pk)
    context: dict[str, Any] = {
        "host": host,
        "can_operate": access.can(request.user, "host.operate", host.project_id),
        "can_manage": access.can(request.user, "host.manage", host.project_id),
        "host_topic": status.host_topic(host),
        "no_deploy": services.why_no_deploy(host),
        "events": Event.objects.filter(object_type="hosts.host", object_id=str(host.pk))[:20],
        **host_parts.drift_context(request.user, host),
    }
    if host.enabled:
        try:
            sdk = engine.client_for(host, timeout=4)
            try:
                context["containers"] = [
                    (c, container_rows.in_flight(host, c)) for c in engine_containers.list_containers(sdk)
                ]
                context["engine_events"] = engine_containers.recent_events(sdk)
            finally:
                sdk.close()
        except Exception as exc:  # noqa: BLE001 - the page still shows what the database knows
            context["engine_error"] = engine.describe_error(exc, host.docker_url)
    return render(request, "hosts/fleet/host_detail.html", context)


# -- containers -----------------------------------------------------------------------------------------


@require_POST
def container_action(request: HttpRequest, pk: int, container_id: str, action: str) -> HttpResponse:
    host = Host.objects.select_related("project").get_or_404(request.user, pk, "host.operate")
    try:
        in_flight = services.request_container_action(host, container_id, action)
    except Refused as exc:
        html = format_html('<span class="label label-danger container-refused">{}</span>', exc.message)
        response = HttpResponse(html, status=exc.status)
        response["HX-Reswap"] = "beforeend"  # beside the buttons, which stay: nothing was done
        return response
    # The actions' cell, and (out of band) the row's state: "Stopping…" until the row's news.
    context = {
        "host": host,
        "container_id": container_id,
        "short_id": container_id[:12],
        "in_flight": in_flight,
        "oob": True,
    }
    html = render_to_string("hosts/fleet/container_actions.html", context) + render_to_string(
        "hosts/fleet/container_state.html", context
    )
    return HttpResponse(html, status=202)


@require_http_methods(["GET", "POST"])
def container_remove(request: HttpRequest, pk: int, container_id: str) -> HttpResponse:
    host = Host.objects.select_related("project").get_or_404(request.user, pk, "host.operate")
    services.container_id_or_404(container_id)
    if request.method == "POST":
        try:
            services.remove_container(host, container_id)
        except Refused as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Container {container_id[:12]} removed.")
        return redirect("hosts:host", pk=host.pk)
    container, unread = _container_to_confirm(host, container_id)
    context = {
        "host": host,
        "what": f"container {container.name if container else container_id[:12]}",
        "remove": True,
        "container": container,
        "short_id": container_id[:12],
        "unread": unread,
    }
    return render(request, "hosts/fleet/confirm.html", context)


@require_http_methods(["GET", "POST"])
def container_recreate(request: HttpRequest, pk: int, container_id: str) -> HttpResponse:
    """GET: what recreating does (``hosts.fleet.recreate``); POST: queued, the outcome live."""
    host = Host.objects.select_related("project").get_or_404(request.user, pk, "host.operate")
    services.container_id_or_404(container_id)
    if request.method == "POST":
        try:
            services.request_recreate(host, container_id)
        except Refused as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                f"Recreating container {container_id[:12]}: the new one appears on this page once it runs.",
            )
        return redirect("hosts:host", pk=host.pk)
    container, unread = _container_to_confirm(host, container_id)
    context = {"host": host, "container": container, "short_id": container_id[:12], "unread": unread}
    return render(request, "hosts/fleet/recreate_confirm.html", context)


def _container_to_confirm(
    host: Host, container_id: str
) -> tuple[engine_containers.ContainerSummary | None, str]:
    """The container as a confirmation (remove, recreate) names it (its name and image), or why only its id
    can be shown; a container the engine does not have is a 404."""
    if not host.enabled:
        return None, f"Host {host.name} is disabled: the portal does not connect to it."
    try:
        sdk = engine.client_for(host, timeout=4)
        try:
            found = engine_containers.container_summary(sdk, container_id)
        finally:
            sdk.close()
    except Exception as exc:  # noqa: BLE001 - the person may still confirm by id
        return None, engine.describe_error(exc, host.docker_url)
    if found is None:
        raise Http404("No such container.")
    return found, ""


@require_GET
def container_detail(request: HttpRequest, pk: int, container_id: str) -> HttpResponse:
    host = Host.objects.select_related("project").get_or_404(request.user, pk)
    services.container_id_or_404(container_id)
    show_secrets = access.can(request.user, "host.operate", host.project_id)
    try:
        sdk = engine.client_for(host, timeout=4)
        try:
            attrs = engine_containers.inspect(sdk, container_id, show_secrets=show_secrets)
        finally:
            sdk.close()
    except Exception as exc:  # noqa: BLE001
        message = engine.describe_error(exc, host.docker_url)
        if "No such container" in message:
            raise Http404("No such container.") from None
        return render(request, "hosts/fleet/container_detail.html", {"host": host, "engine_error": message})
    container_topic = f"project:{host.project_id}:host:{host.pk}:container:{attrs['Id']}"
    return render(
        request,
        "hosts/fleet/container_detail.html",
        {
            "host": host,
            "attrs": attrs,
            "name": attrs.get("Name", "").lstrip("/"),
            "inspect_json": json.dumps(attrs, indent=2, sort_keys=True, default=str),
            "env": (attrs.get("Config") or {}).get("Env") or [],
            "show_secrets": show_secrets,
            "logs_topic": container_topic + ":logs",
            "stats_topic": container_topic + ":stats",
        },
    )


# -- deploy ------------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def deploy_to(request: HttpRequest) -> HttpResponse:
    """From a registry's tag page: the chosen host's deploy form, with the image filled in."""
    try:
        pk = int(request.GET.get("host", ""))
    except ValueError:
        raise Http404("No such host.") from None
    host = Host.objects.select_related("project").get_or_404(request.user, pk, "host.operate")
    return redirect(
        f"{reverse('hosts:deploy', args=[host.pk])}?{urlencode({'image': request.GET.get('image', '')})}"
    )


def deploy(request: HttpRequest, pk: int) -> HttpResponse:
    host = Host.objects.select_related("project").get_or_404(request.user, pk, "host.operate")
    if request.method == "POST":
        form = DeployForm(request.POST)
        if form.is_valid():
            spec = {k: form.cleaned_data[k] for k in ("image", "name", "command", "environment", "ports")}
            spec["restart_policy"] = form.cleaned_data["restart_policy"]
            spec["network"] = form.cleaned_data["network"]
            spec["pull_only"] = form.cleaned_data["pull_only"]
            try:
                services.request_deploy(host, request.user, spec, form.cleaned_data["token"])
            except Refused as exc:
                context = {"host": host, "form": form, "refused": exc.message}
                return render(request, "hosts/fleet/deploy_form_fields.html", context, status=exc.status)
            return render(request, "hosts/fleet/deploy_started.html", {"host": host, "spec": spec})
        return render(request, "hosts/fleet/deploy_form_fields.html", {"host": host, "form": form})
    token = secrets.token_urlsafe(12)
    # A registry's tag page hands the image over (?image=...): the person still reviews and submits.
    form = DeployForm(
        initial={
            "token": token,
            "restart_policy": "no",
            "image": request.GET.get("image", "")[:500],
            "pull_only": request.GET.get("pull") == "1",  # the images' "Pull an image"
        }
    )
    return render(
        request,
        "hosts/fleet/deploy.html",
        {
            "host": host,
            "form": form,
            "deploy_topic": f"{status.host_topic(host)}:deploy:{token}",
            "projects": Project.objects.none(),
            "action_url": reverse("hosts:deploy", args=[host.pk]),
            "refused": services.why_no_deploy(host),
        },
    )
