"""The login page's place for "Sign in with …" (the core's login page loads this; it imports
nothing of sso). The page itself asks the database nothing, so it renders with the database
away; htmx fetches the button (sso:button) once the page is up."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("sso/sign_in_slot.html")
def sso_sign_in(next_url: str = "") -> dict[str, Any]:
    return {"next": next_url}
