"""The Admin's single sign-on page: settings, group mappings, "Test". Each view
translates a request into a service call (sso.services) and its answer into a page."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal import access
from portal.http import AuthenticatedHttpRequest
from portal.refused import Refused

from . import services
from .forms import MappingForm, ProviderForm
from .models import GroupMapping


def _page(
    request: AuthenticatedHttpRequest,
    form: ProviderForm | None = None,
    mapping_form: MappingForm | None = None,
    status: int = 200,
) -> HttpResponse:
    provider = services.the_provider()
    return render(
        request,
        "sso/settings.html",
        {
            "provider": provider,
            "form": form or ProviderForm(instance=provider),
            "mapping_form": mapping_form or MappingForm(),
            "mappings": provider.mappings.select_related("project") if provider else [],
            "callback": request.build_absolute_uri("/sso/callback/"),
        },
        status=status,
    )


def settings_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    access.require(request.user, "portal.admin")
    if request.method != "POST":
        return _page(request)
    form = ProviderForm(request.POST, instance=services.the_provider())
    if not form.is_valid():
        return _page(request, form=form, status=400)
    try:
        _, said = services.save_provider(request.user, form)
    except Refused as refused:
        form.add_error(refused.field or None, refused.message)
        return _page(request, form=form, status=refused.status)
    messages.success(request, f"Single sign-on settings saved. {said}")
    return redirect("sso:settings")


@require_POST
def test_provider(request: AuthenticatedHttpRequest) -> HttpResponse:
    access.require(request.user, "portal.admin")
    form = ProviderForm(request.POST, instance=services.the_provider())
    return render(request, "sso/_probe.html", {"probe": services.test_provider(request.user, form)})


@require_POST
def mapping_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    access.require(request.user, "portal.admin")
    provider = services.the_provider()
    if provider is None:
        messages.error(request, "Save the provider settings first.")
        return redirect("sso:settings")
    form = MappingForm(request.POST)
    if not form.is_valid():
        return _page(request, mapping_form=form, status=400)
    try:
        services.add_mapping(request.user, provider, form)
    except Refused as refused:
        form.add_error(refused.field or None, refused.message)
        return _page(request, mapping_form=form, status=refused.status)
    messages.success(request, "Mapping added: it applies at each person's next sign-in.")
    return redirect("sso:settings")


@require_POST
def mapping_remove(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    access.require(request.user, "portal.admin")
    services.remove_mapping(request.user, get_object_or_404(GroupMapping, pk=pk))
    messages.success(request, "Mapping removed: the roles it gave go at the next sign-in.")
    return redirect("sso:settings")
