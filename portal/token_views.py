"""Personal API tokens: made here (shown once), listed, revoked."""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from . import access, api_auth, audit, throttle
from .models import ApiToken


def _too_many_new_tokens(user: object) -> int:
    """Minutes until ``user`` may make another token (0: now). Counted in the database,
    so it holds across processes and needs no cache."""
    rate = throttle.Rate.parse(settings.THROTTLE_API_TOKEN_CREATE)
    since = timezone.now() - timedelta(seconds=rate.seconds)
    recent = list(
        ApiToken.objects.filter(user=user, created__gte=since)
        .order_by("-created")
        .values_list("created", flat=True)[: rate.count]
    )
    if len(recent) < rate.count:
        return 0
    return max(1, math.ceil((recent[-1] - since).total_seconds() / 60))


def token_list(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    new_token = None
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:100]
        if not name:
            messages.error(request, "Give the token a name, so you know later what uses it.")
        elif wait := _too_many_new_tokens(request.user):
            messages.error(request, f"Too many new tokens; try again in {wait} minutes.")
        else:
            record, new_token = api_auth.issue(request.user, name)
            audit.record("api_token.create", obj=record, after={"name": name, "prefix": record.prefix})
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "portal/tokens.html", {"tokens": tokens, "new_token": new_token})


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    access.require(request.user, "portal.use")
    token = get_object_or_404(ApiToken, pk=pk, user=request.user, revoked__isnull=True)
    token.revoked = timezone.now()
    token.save(update_fields=["revoked"])
    audit.record("api_token.revoke", obj=token, before={"name": token.name, "prefix": token.prefix})
    messages.success(request, f"Token {token.name} revoked.")
    return redirect("api-tokens")
