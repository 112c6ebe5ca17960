"""The portal's own pages: sign-in, the dashboard, /healthz."""

from __future__ import annotations

import sys

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import access, health, heartbeats
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
    is_admin = access.is_admin(request.user)
    steps = dashboard_panels.first_steps() if is_admin else []
    return render(
        request,
        "portal/dashboard.html",
        {
            "memberships": memberships,
            "is_admin": is_admin,
            "audit_entries": entries.select_related(None)[:15],
            "audit_topics": topics,
            "cards": dashboard_panels.cards(request.user),
            # Shown until every step is done: then the portal is set up and it steps aside.
            "first_steps": steps if not all(s.done for s in steps) else [],
        },
    )


@require_GET
def dashboard_card(request: AuthenticatedHttpRequest, name: str) -> HttpResponse:
    """One dashboard card again, after a live event said it changed."""
    access.require(request.user, "portal.use")
    shown = dashboard_panels.card_for(request.user, name)
    if shown is None:
        raise Http404("no such card")
    return render(request, "portal/partials/dashboard_card.html", {"shown": shown})


@require_GET
def nav_badge(request: AuthenticatedHttpRequest, name: str) -> HttpResponse:
    """A header badge again (its count), after a live event said it changed."""
    access.require(request.user, "portal.use")
    shown = dashboard_panels.badge_for(request.user, name)
    if shown is None:
        raise Http404("no such badge")
    return render(request, "portal/partials/nav_badge.html", {"b": shown})


@login_not_required
@never_cache
@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    # Anyone gets the shared answer; an Admin may ask for a check now (?fresh=1).
    fresh = request.GET.get("fresh") == "1" and access.is_admin(await request.auser())
    checks = await health.shared_report(fresh=fresh)
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(checks, status=200 if healthy else 503)


@login_not_required
@never_cache
@require_GET
async def healthz_live(request: HttpRequest) -> JsonResponse:
    """For a load balancer's liveness probe: the process answers; nothing else is asked."""
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
@require_GET
async def healthz_ready(request: HttpRequest) -> JsonResponse:
    """For a load balancer's readiness probe: database, Redis and cache answer (the task
    workers are /healthz's business: a busy worker is no reason to take a web process out)."""
    checks = {k: v for k, v in (await health.shared_report()).items() if k in health.READY}
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(checks, status=200 if healthy else 503)


def status(request: HttpRequest) -> HttpResponse:
    """The Admin's status page: a fresh health check and every process's heartbeat."""
    access.require(request.user, "portal.status")
    checks = async_to_sync(health.report)()
    try:
        beats = heartbeats.beats()
    except Exception:  # noqa: BLE001 - Redis away: the checks above say why
        checks["heartbeats"] = "not readable: Redis did not answer"
        beats = []
    return render(
        request,
        "portal/status.html",
        {"checks": sorted(checks.items()), "beats": beats, "embedded": settings.CELERY_TASK_ALWAYS_EAGER},
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404: JSON for API clients, the portal's page for people."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return render(request, "404.html", status=404)


#: Told when the database is away (restarting, failing over): a 503 says "not now", not "bug".
DATABASE_AWAY = "The database did not answer (it may be restarting)."


def server_error(request: HttpRequest) -> HttpResponse:
    # Called while the exception is being handled: a database that went away is a 503.
    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": DATABASE_AWAY}, status=503, headers={"Retry-After": "5"})
        # Rendered without the request: its context (the user, the menu) needs the database.
        page = render_to_string("503.html", {"detail": DATABASE_AWAY})
        return HttpResponse(page, status=503, headers={"Retry-After": "5"})
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "The portal hit an error; it has been logged."}, status=500)
    return render(request, "500.html", status=500)
