"""The request a view behind sign-in gets.

LoginRequiredMiddleware lets only a signed-in user reach a view not marked
``@login_not_required``, so there ``request.user`` is a ``User``, never anonymous;
HtmxMiddleware sets ``request.htmx`` on every request. Views marked
``@login_not_required`` take a plain ``HttpRequest``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_htmx.middleware import HtmxDetails


class AuthenticatedHttpRequest(HttpRequest):
    user: User
    htmx: HtmxDetails
