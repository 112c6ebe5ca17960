"""Personal API tokens: made here (shown once) with an expiry and a scope, listed, revoked."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from . import access, api_auth, audit, throttle
from .forms import ClarityForm
from .http import AuthenticatedHttpRequest
from .models import ApiToken, Project

if TYPE_CHECKING:
    from django.contrib.auth.models import User

EXPIRY_CHOICES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (180, "180 days"), (365, "1 year")]


class TokenForm(ClarityForm, forms.Form):
    name = forms.CharField(max_length=100, help_text="So you know later what uses it.")
    days = forms.TypedChoiceField(
        choices=EXPIRY_CHOICES, coerce=int, initial=api_auth.DEFAULT_DAYS, label="Expires after"
    )
    read_only = forms.TypedChoiceField(
        choices=[("1", "Read only"), ("0", "Read and write")],
        coerce=lambda value: value == "1",
        initial="1",
        label="Access",
    )
    project = forms.ModelChoiceField(
        queryset=Project.objects.none(), required=False, empty_label="All my projects"
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = access.projects(user).order_by("name")  # type: ignore[attr-defined]

    def clean_days(self) -> int:
        days = int(self.cleaned_data["days"])
        if not 1 <= days <= api_auth.MAX_DAYS:
            raise forms.ValidationError(f"A token lasts at most {api_auth.MAX_DAYS} days.")
        return days


def _too_many_new_tokens(user: User) -> int:
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


def token_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    new_token = None
    form = TokenForm(request.POST or None, user=request.user)
    if request.method == "POST":
        if wait := _too_many_new_tokens(request.user):
            messages.error(request, f"Too many new tokens; try again in {wait} minutes.")
        elif form.is_valid():
            data = form.cleaned_data
            record, new_token = api_auth.issue(
                request.user,
                data["name"].strip(),
                days=data["days"],
                read_only=data["read_only"],
                project=data["project"],
            )
            audit.record(
                "api_token.create",
                obj=record,
                after={
                    "name": record.name,
                    "prefix": record.prefix,
                    "expires": record.expires.isoformat(),
                    "scope": record.scope,
                },
            )
            form = TokenForm(user=request.user)
        else:
            messages.error(request, "The token was not made: see the form.")
    tokens = ApiToken.objects.filter(user=request.user).select_related("project")
    return render(
        request,
        "portal/tokens.html",
        {"tokens": tokens, "new_token": new_token, "form": form, "now": timezone.now()},
        status=400 if form.errors else 200,
    )


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    access.require(request.user, "portal.use")
    token = get_object_or_404(ApiToken, pk=pk, user=request.user, revoked__isnull=True)
    token.revoked = timezone.now()
    token.save(update_fields=["revoked"])
    audit.record("api_token.revoke", obj=token, before={"name": token.name, "prefix": token.prefix})
    messages.success(request, f"Token {token.name} revoked.")
    return redirect("api-tokens")
