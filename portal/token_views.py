"""Personal API tokens: made here (shown once), listed, revoked."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from . import access, api_auth, audit
from .models import ApiToken


def token_list(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    new_token = None
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:100]
        if not name:
            messages.error(request, "Give the token a name, so you know later what uses it.")
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
