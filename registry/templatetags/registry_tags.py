"""Small display helpers for registry pages (plain text out: autoescape still applies)."""

from __future__ import annotations

from django import template
from django.urls import NoReverseMatch, reverse

register = template.Library()

MEDIA_LABELS = {
    "application/vnd.oci.image.index.v1+json": "OCI index",
    "application/vnd.oci.image.manifest.v1+json": "OCI manifest",
    "application/vnd.docker.distribution.manifest.list.v2+json": "Docker manifest list",
    "application/vnd.docker.distribution.manifest.v2+json": "Docker manifest",
}


@register.filter
def media_label(media_type: str) -> str:
    return MEDIA_LABELS.get(media_type, media_type or "unknown type")


@register.filter
def short_digest(digest: str) -> str:
    algorithm, _, value = (digest or "").partition(":")
    return f"{algorithm}:{value[:12]}" if value else digest


@register.simple_tag
def link_to(name: str, *args: object) -> str:
    """``reverse`` that gives "" where a name from a registry cannot be part of a URL
    (the page shows it as text instead of failing)."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


@register.filter
def thousands(value: int) -> str:
    """1050 -> "1,050" (the pages are in English)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)
