"""A host's images, volumes and networks: the section of its page (asked by htmx once the page is shown,
so a slow engine never holds the page), create and tag forms, removal and prune confirmations. A view
only translates: the rules are in ``volumes``, ``networks`` and ``images`` beside it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from hosts.engine_objects import common, images, networks, origins, volumes
from hosts.engine_objects.forms import ImageTagForm, NetworkForm, VolumeForm
from hosts.models import Host
from portal import access
from portal.refused import Refused


def _host(request: HttpRequest, pk: int, action: str = "host.view") -> Host:
    host: Host = Host.objects.select_related("project").get_or_404(request.user, pk, action)
    return host


def _back(host: Host, anchor: str) -> HttpResponse:
    return redirect(f"{reverse('hosts:host', args=[host.pk])}#{anchor}")


@require_GET
def section(request: HttpRequest, pk: int) -> HttpResponse:
    host = _host(request, pk)
    context: dict[str, Any] = {
        "host": host,
        "can_operate": access.can(request.user, "host.operate", host.project_id),
    }
    if not host.enabled:
        context["error"] = f"{host} is disabled: the portal does not connect to it."
    else:
        try:
            context["holdings"] = held = common.holdings(request.user, host)
        except Refused as exc:
            context["error"] = exc.message
        else:
            found = origins.origins(host, held.images)
            context["image_rows"] = [(image, found.get(image.id, [])) for image in held.images]
    return render(request, "hosts/engine_objects/section.html", context)


def _create(
    request: HttpRequest, pk: int, form_class: type[VolumeForm | NetworkForm], what: str
) -> HttpResponse:
    host = _host(request, pk, "host.operate")
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if what == "volume":
                volumes.create_volume(request.user, host, data["name"], data["options"], data["labels"])
            else:
                networks.create_network(
                    request.user,
                    host,
                    data["name"],
                    driver=data["driver"],
                    subnet=data["subnet"],
                    gateway=data["gateway"],
                    options=data["options"],
                    labels=data["labels"],
                )
        except Refused as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"{what.capitalize()} {data['name']} created on {host}.")
            return _back(host, f"{what}s")
    return render(request, "hosts/engine_objects/create.html", {"host": host, "form": form, "what": what})


@require_http_methods(["GET", "POST"])
def volume_new(request: HttpRequest, pk: int) -> HttpResponse:
    return _create(request, pk, VolumeForm, "volume")


@require_http_methods(["GET", "POST"])
def network_new(request: HttpRequest, pk: int) -> HttpResponse:
    return _create(request, pk, NetworkForm, "network")


@require_http_methods(["GET", "POST"])
def volume_remove(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    host = _host(request, pk, "host.operate")
    if request.method == "POST":
        try:
            volumes.remove_volume(request.user, host, name)
        except Refused as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Volume {name} removed from {host}.")
        return _back(host, "volumes")
    holdings = _holdings_or_404(request, host, "volumes")
    volume = next((v for v in holdings.volumes if v.name == name), None)
    if volume is None:
        raise Http404("No such volume.")
    context = {"host": host, "what": f"volume {name}", "used_by": volume.used_by, "kind": "volume"}
    return render(request, "hosts/engine_objects/remove.html", context)


@require_http_methods(["GET", "POST"])
def network_remove(request: HttpRequest, pk: int, network_id: str) -> HttpResponse:
    host = _host(request, pk, "host.operate")
    if request.method == "POST":
        try:
            name = networks.remove_network(request.user, host, network_id)
        except Refused as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Network {name} removed from {host}.")
        return _back(host, "networks")
    try:
        network = networks.network_of(request.user, host, network_id)
    except Refused as exc:
        raise Http404(exc.message) from None
    context = {"host": host, "what": f"network {network.name}", "used_by": network.used_by, "kind": "network"}
    return render(request, "hosts/engine_objects/remove.html", context)


def _holdings_or_404(request: HttpRequest, host: Host, kind: str, *, sizes: bool = False) -> Any:
    try:
        return common.holdings(request.user, host, sizes=sizes, kinds=(kind,))
    except Refused as exc:
        raise Http404(exc.message) from None


def _pruned(request: HttpRequest, host: Host, done: common.Pruned, what: str) -> HttpResponse:
    freed = f", {filesizeformat(done.freed)} freed" if what != "network" else ""
    count = len(done.removed)
    messages.success(request, f"{count} unused {what}{'s' if count != 1 else ''} removed from {host}{freed}.")
    if done.kept:
        messages.warning(request, f"Kept: {'; '.join(done.kept)}.")
    return _back(host, f"{what}s")


#: One line of a prune's confirmation: what is posted back, what is shown, its size (if known).
Item = tuple[str, str, int | None]


def _prune(
    request: HttpRequest,
    pk: int,
    kind: str,
    prune: Callable[[Any, Host, list[str]], common.Pruned],
    listing: Callable[[Host, Any], list[Item]],
    *,
    sizes: bool = False,
) -> HttpResponse:
    """GET: the unused ones of ``kind`` and what they take; POST: those very ones removed."""
    host = _host(request, pk, "host.operate")
    if request.method == "POST":
        try:
            done = prune(request.user, host, request.POST.getlist("item"))
        except Refused as exc:
            messages.error(request, exc.message)
            return _back(host, f"{kind}s")
        return _pruned(request, host, done, kind)
    items = listing(host, _holdings_or_404(request, host, f"{kind}s", sizes=sizes))
    total = sum(size or 0 for *_, size in items)
    context = {"host": host, "items": items, "total": total, "kind": kind}
    return render(request, "hosts/engine_objects/prune.html", context)


@require_http_methods(["GET", "POST"])
def volumes_prune(request: HttpRequest, pk: int) -> HttpResponse:
    def listing(host: Host, holdings: Any) -> list[Item]:
        return [(v.name, v.name, v.size) for v in volumes.prunable_volumes(holdings, host)]

    return _prune(request, pk, "volume", volumes.prune_volumes, listing, sizes=True)


@require_http_methods(["GET", "POST"])
def networks_prune(request: HttpRequest, pk: int) -> HttpResponse:
    def listing(host: Host, holdings: Any) -> list[Item]:
        return [(n.id, n.name, None) for n in networks.prunable_networks(holdings, host)]

    return _prune(request, pk, "network", networks.prune_networks, listing)


# -- images -------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def image_remove(request: HttpRequest, pk: int, image_id: str) -> HttpResponse:
    """GET: what the image is and what uses it (a Project admin may force it); POST: removed."""
    host = _host(request, pk, "host.operate")
    if request.method == "POST":
        try:
            tags = images.remove_image(request.user, host, image_id, force=request.POST.get("force") == "on")
        except Refused as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Image {', '.join(tags) or image_id[7:19]} removed from {host}.")
        return _back(host, "images")
    try:
        image = images.image_of(request.user, host, image_id)
    except Refused as exc:
        raise Http404(exc.message) from None
    context = {
        "host": host,
        "what": f"image {', '.join(image.tags) or image.short_id}",
        "used_by": image.used_by,
        "kind": "image",
        "can_force": access.can(request.user, "host.manage", host.project_id),
    }
    return render(request, "hosts/engine_objects/remove.html", context)


@require_http_methods(["GET", "POST"])
def images_prune(request: HttpRequest, pk: int) -> HttpResponse:
    def listing(host: Host, holdings: Any) -> list[Item]:
        return [(i.id, ", ".join(i.tags) or i.short_id, i.size) for i in images.prunable_images(holdings)]

    return _prune(request, pk, "image", images.prune_images, listing)


@require_http_methods(["GET", "POST"])
def image_tag(request: HttpRequest, pk: int, image_id: str) -> HttpResponse:
    host = _host(request, pk, "host.operate")
    try:
        image = images.image_of(request.user, host, image_id)
    except Refused as exc:
        raise Http404(exc.message) from None
    form = ImageTagForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tag = images.tag_image(request.user, host, image.id, form.cleaned_data["reference"])
        except Refused as exc:
            form.add_error("reference" if exc.field == "reference" else None, exc.message)
        else:
            messages.success(request, f"Image {image.short_id} tagged {tag} on {host}.")
            return _back(host, "images")
    context = {"host": host, "form": form, "what": "tag", "image": image}
    return render(request, "hosts/engine_objects/create.html", context)
