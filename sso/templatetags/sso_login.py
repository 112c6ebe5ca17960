"""The login page's "Sign in with …" button, shown while a provider is enabled and
discovered (the core's login page loads this; it imports nothing of sso)."""

from __future__ import annotations

from typing import Any

from django import template
from django.db import DatabaseError

from ..backend import current_provider

register = template.Library()


@register.inclusion_tag("sso/sign_in_button.html")
def sso_sign_in(next_url: str = "") -> dict[str, Any]:
    try:
        provider = current_provider()
    except DatabaseError:
        # The login page renders without its database (it says when sign-in cannot work):
        # with the database away, there is no button rather than no page.
        provider = None
    return {"provider": provider, "next": next_url}
