"""Applications' pages: the templates' catalog (list, new or imported, a template's versions,
diff and export). A view only translates: the rules are in ``hosts.applications.catalog``.

A template someone may not see is a 404; one they may see but not manage is a 403.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods

from hosts.applications import catalog, deployments, discovery
from hosts.applications.forms import TemplateForm
from hosts.models import AppTemplate
from portal import access
from portal.refused import Refused


def template_or_404(request: HttpRequest, pk: int, action: str = "app.view") -> AppTemplate:
    template = catalog.visible(request.user).filter(pk=pk).first()
    if template is None:
        raise Http404("no such template")
    access.require(request.user, action, template.project_id)
    return template


@require_GET
def apps(request: HttpRequest) -> HttpResponse:
    templates = catalog.visible(request.user).order_by("project__name", "name")
    context = {
        "applications": deployments.visible(request.user).exclude(state="removed").order_by("name"),
        "templates": templates,
        "may_manage": access.projects(request.user, "app.manage").exists(),
    }
    return render(request, "hosts/apps/index.html", context)


@require_GET
def apps_unmanaged(request: HttpRequest) -> HttpResponse:
    """The Applications page's unmanaged Compose projects, asked for once the page is shown: every
    engine of the person's projects is asked (each answer cached for a while), which takes time."""
    viewed = access.projects(request.user, "app.view").values_list("pk", flat=True)
    context = {
        "unmanaged": discovery.read(viewed),
        "may_adopt": set(access.projects(request.user, "app.deploy").values_list("pk", flat=True)),
    }
    return render(request, "hosts/apps/unmanaged.html", context)


def _show_refusal(form: TemplateForm, exc: Refused) -> None:
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, exc.message)
    for detail in exc.details:
        form.add_error(field, detail)


def _save(request: HttpRequest, form: TemplateForm, template: AppTemplate | None) -> HttpResponse | None:
    """Save a valid form through the catalog; None when refused (the form then says why)."""
    data = form.cleaned_data
    draft = catalog.Draft(
        name=data["name"], source=data["compose_file"], description=data["description"], note=data["note"]
    )
    try:
        version = catalog.save(request.user, draft, project=data.get("project"), template=template)
    except Refused as exc:
        _show_refusal(form, exc)
        return None
    messages.success(request, f"Template {version.template.name} saved as version {version.number}.")
    return redirect("hosts:app_template", pk=version.template_id)


@require_http_methods(["GET", "POST"])
def template_new(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    if not access.projects(request.user, "app.manage").exists():
        raise Http404("no project to keep templates in")
    if request.method == "POST":
        form = TemplateForm(request.POST, request.FILES, user=request.user)
        if form.is_valid() and (done := _save(request, form, None)):
            return done
    else:
        image = request.GET.get("image", "").strip()[:500]
        initial = (
            {"compose_file": catalog.starter(image), "name": image.rsplit("/", 1)[-1][:100]} if image else {}
        )
        form = TemplateForm(initial=initial, user=request.user)
    return render(request, "hosts/apps/template_form.html", {"form": form, "template": None})


@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    template = template_or_404(request, pk, "app.manage")
    if request.method == "POST":
        form = TemplateForm(request.POST, request.FILES, user=request.user, template=template)
        if form.is_valid() and (done := _save(request, form, template)):
            return done
    else:
        initial = {
            "name": template.name,
            "description": template.description,
            "compose_file": catalog.version_of(template).source,
        }
        form = TemplateForm(initial=initial, user=request.user, template=template)
    return render(request, "hosts/apps/template_form.html", {"form": form, "template": template})


def _number(value: Any) -> int | None:
    text = str(value or "")
    return int(text) if text.isdigit() and len(text) < 10 else None


@require_GET
def template_detail(request: HttpRequest, pk: int) -> HttpResponse:
    template = template_or_404(request, pk)
    versions = list(template.versions.select_related("created_by"))
    try:
        version = catalog.version_of(template, _number(request.GET.get("version")))
    except Refused as exc:
        raise Http404(exc.message) from None
    older, newer = _number(request.GET.get("from")), _number(request.GET.get("to"))
    diff, diff_error = "", ""
    if older is not None and newer is not None:
        try:
            diff = catalog.diff(template, older, newer) or "(no difference)"
        except Refused as exc:
            diff_error = exc.message
    context: dict[str, Any] = {
        "template": template,
        "version": version,
        "versions": versions,
        "variables": catalog.variables_of(version.source),
        "diff": diff,
        "diff_error": diff_error,
        "older": older,
        "newer": newer,
        "may_manage": access.can(request.user, "app.manage", template.project_id),
        "may_deploy": access.can(request.user, "app.deploy", template.project_id),
    }
    return render(request, "hosts/apps/template.html", context)


@require_GET
def template_export(request: HttpRequest, pk: int) -> HttpResponse:
    """The Compose file of a version, as the very bytes that were saved."""
    template = template_or_404(request, pk)
    try:
        version = catalog.version_of(template, _number(request.GET.get("version")))
    except Refused as exc:
        raise Http404(exc.message) from None
    response = HttpResponse(version.source.encode("utf-8"), content_type="application/yaml")
    filename = f"{slugify(template.name) or 'template'}-v{version.number}.compose.yaml"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_http_methods(["GET", "POST"])
def template_remove(request: HttpRequest, pk: int) -> HttpResponse:
    template = template_or_404(request, pk, "app.manage")
    if request.method == "POST":
        catalog.remove(request.user, template)
        messages.success(request, f"Template {template.name} removed.")
        return redirect("hosts:apps")
    return render(request, "hosts/apps/template_remove.html", {"template": template})
