"""Provisioning quotas in the portal (Admins only; Django's admin is not needed): every
project's quota at a glance, and one project's quota to set."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from hosts.models import ProvisionQuota
from hosts.provision import services as provision_services
from hosts.provision.forms import QuotaForm
from portal import access
from portal.models import Project
from portal.refused import Refused


@require_GET
def quotas(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "provision.quota")
    found = {
        quota.project_id: quota
        for quota in ProvisionQuota.objects.prefetch_related("vcenters").annotate(listed=Count("templates"))
    }
    rows = [(project, found.get(project.pk)) for project in Project.objects.order_by("name")]
    return render(request, "hosts/provision/quotas.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
def quota_edit(request: HttpRequest, project_pk: int) -> HttpResponse:
    access.require(request.user, "provision.quota")
    project = get_object_or_404(Project, pk=project_pk)
    quota = ProvisionQuota.objects.filter(project=project).first()
    form = QuotaForm(request.POST or None, quota=quota)
    if request.method == "POST" and form.is_valid():
        try:
            provision_services.set_quota(project, request.user, **form.cleaned_data)
        except Refused as refused:
            form.add_error(refused.field or None, refused.message)
        else:
            messages.success(request, f"Provisioning quota of {project} saved.")
            return redirect("hosts:provision_quotas")
    status = 400 if form.errors else 200
    return render(
        request, "hosts/provision/quota_form.html", {"form": form, "project": project}, status=status
    )
