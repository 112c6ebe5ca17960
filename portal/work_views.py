"""My work: what a person may use and what they asked for.

The rows come from the sources the apps register in ``portal.work`` (configuration
changes, VM actions, deploys, provisioning requests), the panels beside them likewise;
rows update live on the person's own topic ``requests:user:ID``. The approvals queue is
the hosts app's (``hosts.changes.approval_views``).
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render

from . import access, work
from .http import AuthenticatedHttpRequest
from .models import Membership


def my_work(request: AuthenticatedHttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    user = request.user
    view = request.GET.get("view", "all")
    if view not in work.VIEWS:
        view = "all"
    rows = work.my_requests(user)
    if view != "all":
        rows = [r for r in rows if r.bucket == view]
    context = {
        "memberships": Membership.objects.filter(user=user)
        .select_related("project")
        .order_by("project__name"),
        "is_admin": access.is_admin(user),
        "requests": rows,
        "view": view,
        "views": work.VIEWS,
        "topic": work.requests_topic(user.pk),
        **work.panels(user),
    }
    return render(request, "portal/work/my_work.html", context)
