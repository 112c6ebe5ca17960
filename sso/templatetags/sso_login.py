"""The login page's "Sign in with …" button, shown while a provider is enabled and
discovered (the core's login page loads this; it imports nothing of sso)."""

from __future__ import annotations

from typing import Any

from django import template

from ..backend import current_provider

register = template.Library()


@register.inclusion_tag("sso/sign_in_button.html")
def sso_sign_in(next_url: str = "") -> dict[str, Any]:
    return {"provider": current_provider(), "next": next_url}
