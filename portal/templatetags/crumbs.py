"""Breadcrumbs: where a page sits below its section, the same on every page.

A page fills ``{% block breadcrumbs %}`` with ``{% crumb %}`` steps; base.html wraps them
in one ``<nav class="breadcrumbs">`` through the ``breadcrumbs`` filter, and a page that
fills nothing gets no empty landmark. A built-in library (settings.TEMPLATES).
"""

from __future__ import annotations

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag
def crumb(label: object, url_name: str = "", *args: object) -> SafeString:
    """``{% crumb "Hosts" "hosts:index" %}`` a step with its link; ``{% crumb host.name %}``
    the page itself. A name from a registry that cannot be in a URL is shown as text."""
    if url_name:
        try:
            href = reverse(url_name, args=args)
        except NoReverseMatch:
            pass
        else:
            return format_html('<li class="clr-breadcrumb-item"><a href="{}">{}</a></li>', href, label)
    return format_html('<li class="clr-breadcrumb-item" aria-current="page">{}</li>', label)


@register.filter(is_safe=True)
def breadcrumbs(steps: SafeString) -> SafeString | str:
    """The rendered steps (template output, already escaped) in their nav; none: nothing."""
    if not steps.strip():
        return ""
    return format_html(
        '<nav class="breadcrumbs" aria-label="Breadcrumb"><ol class="clr-breadcrumb-menu">{}</ol></nav>',
        steps,
    )
