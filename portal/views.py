"""The portal's own pages: sign-in, the dashboard, /healthz."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import access, health
from .models import AuditEntry, Membership


class PortalLoginView(LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


def audit_entries_for(user) -> tuple[list[AuditEntry], list[str]]:  # type: ignore[no-untyped-def]
    """The latest audit entries ``user`` may see, and the live topics that extend them."""
    entries = AuditEntry.objects.select_related("project")
    if access.can(user, "audit.view_all"):
        return list(entries[:15]), ["audit:all"]
    project_ids = list(access.projects(user, "audit.view").values_list("pk", flat=True))
    from django.db.models import Q

    visible = entries.filter(Q(actor=user) | Q(project_id__in=project_ids))
    topics = [f"audit:user:{user.pk}"] + [f"audit:project:{pk}" for pk in project_ids]
    return list(visible[:15]), topics


def dashboard(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    memberships = Membership.objects.filter(user=request.user).select_related("project")
    entries, topics = audit_entries_for(request.user)
    return render(
        request,
        "portal/dashboard.html",
        {
            "memberships": memberships,
            "is_admin": access.is_admin(request.user),
            "audit_entries": entries,
            "audit_topics": topics,
        },
    )


@login_not_required
@never_cache
@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    checks = await health.report()
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(checks, status=200 if healthy else 503)
