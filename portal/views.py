"""The portal's own pages: sign-in, the dashboard, /healthz."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import access, health
from . import dashboard as dashboard_panels
from .audit_views import visible_audit
from .http import AuthenticatedHttpRequest
from .models import Membership


class PortalLoginView(LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    memberships = Membership.objects.filter(user=request.user).select_related("project")
    entries, topics = visible_audit(request.user)
    return render(
        request,
        "portal/dashboard.html",
        {
            "memberships": memberships,
            "is_admin": access.is_admin(request.user),
            "audit_entries": entries.select_related(None)[:15],
            "audit_topics": topics,
            **dashboard_panels.panels(request.user),
        },
    )


@login_not_required
@never_cache
@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    # Anyone gets the shared answer; an Admin may ask for a check now (?fresh=1).
    fresh = request.GET.get("fresh") == "1" and access.is_admin(await request.auser())
    checks = await health.shared_report(fresh=fresh)
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(checks, status=200 if healthy else 503)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404: JSON for API clients, the portal's page for people."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "The portal hit an error; it has been logged."}, status=500)
    return render(request, "500.html", status=500)
