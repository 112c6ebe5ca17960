"""One way to show a moment on every page: ``{{ value|when }}``.

A built-in library (settings.TEMPLATES), so every template has it without ``{% load %}``.
The text is short and the same everywhere; the full time, with its zone, is the tooltip;
``datetime=`` carries ISO 8601 for machines. Durations ("waiting 12 minutes") go
through ``how_long`` and ``time_left`` here too, so no template formats time itself.
"""

from __future__ import annotations

import datetime
from typing import Any

from django import template
from django.utils import dateformat, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil

register = template.Library()

#: The one short format (sortable, unambiguous in every locale) and the tooltip's.
SHORT = "Y-m-d H:i"
FULL = "Y-m-d H:i:s T"


def moment(value: Any) -> datetime.datetime | None:
    """A datetime from what the portal holds (a datetime, a date), a registry's ISO 8601
    text or a Docker engine's epoch seconds; None for nothing or what is not a time."""
    if isinstance(value, datetime.datetime):
        found = value
    elif isinstance(value, datetime.date):
        found = datetime.datetime.combine(value, datetime.time())
    elif isinstance(value, bool) or value in (None, ""):
        return None
    elif isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            found = datetime.datetime.fromtimestamp(int(value), tz=datetime.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        try:
            # Registries write "Z" and up to nine digits of a second: Python reads six.
            text = value.strip().replace("Z", "+00:00")
            head, dot, rest = text.partition(".")
            if dot:
                digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
                text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
            found = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if timezone.is_naive(found):
        found = timezone.make_aware(found, datetime.UTC)
    return timezone.localtime(found)


@register.filter(is_safe=True)
def when(value: Any) -> SafeString | str:
    """``<time datetime="ISO" title="2026-12-05 12:00:03 UTC">2026-12-05 12:00</time>``;
    "" for no time (so ``|default:"never"`` reads), the text itself when it is not one."""
    found = moment(value)
    if found is None:
        return "" if value in (None, "", 0) else str(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        found.isoformat(),
        dateformat.format(found, FULL),
        dateformat.format(found, SHORT),
    )


@register.filter
def how_long(value: Any) -> str:
    """Time since a moment in words: "12 minutes"."""
    found = moment(value)
    return timesince(found) if found else ""


@register.filter
def time_left(value: Any) -> str:
    """Time until a moment in words: "48 minutes"."""
    found = moment(value)
    return timeuntil(found) if found else ""
