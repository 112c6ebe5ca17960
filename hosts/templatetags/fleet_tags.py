"""Template helpers for the fleet page's rows, which a page renders fifty at a time."""

from __future__ import annotations

import functools

from django import template
from django.urls import get_script_prefix, get_urlconf, reverse

register = template.Library()

#: Stands for the pk while the host page's URL is reversed once (an int's URL form is its digits).
_MARKER = 987654321987654321


@functools.lru_cache(maxsize=16)
def _host_url_around_pk(prefix: str, urlconf: str | None) -> tuple[str, str]:
    url = reverse("hosts:host", args=[_MARKER], urlconf=urlconf)
    before, _, after = url.partition(str(_MARKER))
    return before, after


@register.filter
def host_url(pk: int) -> str:
    """``{% url 'hosts:host' pk %}`` at a fraction of the cost: reversed once per script prefix
    and URLconf, then the pk put in its place (a page of rows reversed fifty times otherwise)."""
    before, after = _host_url_around_pk(get_script_prefix(), get_urlconf())
    return f"{before}{int(pk)}{after}"
