"""Sign-in lockout (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one user
name from one address, that pair is refused for AXES_COOLOFF_TIME, the right password
included, and the login page says for how long."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from .audit import client_address


class LockoutBackend(AxesStandaloneBackend):
    """Axes' check, before any password is compared.

    ``authenticate()`` without a request (code, tests' ``Client.login``) has no address
    to lock and is not reachable from outside: it passes to the next backend instead
    of failing as the stock backend does.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        try:
            super().authenticate(request, username=username, password=password, **kwargs)
        except AxesBackendPermissionDenied:
            # Tells the audit handlers this attempt was refused unread, so a flood of
            # attempts during the cool-off does not write one audit row each.
            request.portal_locked_out = True  # type: ignore[attr-defined]
            raise
        return None


def minutes_left(request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
    """Whole minutes until this name and address may try again (at least 1)."""
    cool_off = get_cool_off(request) or timedelta(0)
    username = get_client_username(request, credentials)
    last = (
        AccessAttempt.objects.filter(username=username, ip_address=client_address(request))
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    left = (last + cool_off - timezone.now()) if last is not None else cool_off
    return max(1, math.ceil(left.total_seconds() / 60))


def message(minutes: int) -> str:
    return f"Too many failed sign-ins; try again in {minutes} minute{'s' if minutes != 1 else ''}."


def locked_out(
    request: HttpRequest, original_response: Any = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """Axes' lockout answer: the sign-in page again, with the name kept and the wait named."""
    if not isinstance(credentials, dict):
        credentials = None  # axes' async middleware passes its arguments shifted by one
    form = AuthenticationForm(request, initial={"username": request.POST.get("username", "")[:150]})
    return render(
        request,
        "registration/login.html",
        {
            "form": form,
            "lockout": message(minutes_left(request, credentials)),
            "next": request.POST.get("next", request.GET.get("next", "")),
        },
        status=429,
    )
