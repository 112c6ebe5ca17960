"""The fleet search's result rows (templates/hosts/inventory/results.html), written in Python as
the fleet page's are (hosts.templatetags.fleet_tags): in the template language, a search's fifty
container rows with their buttons were half of its answer (~350 µs a row, measured at 1,000 hosts
and 20,000 containers). Every value from an engine goes through format_html: escaped."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from urllib.parse import quote

from django import template
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from hosts.models import EngineObject
from portal.templatetags.dates import when

register = template.Library()

#: Stand for a host's pk and a container's id while a URL is reversed once (see ``url``).
_PK = 987654321987654321
_ID = "0ddba11c0ffee0ddba11"


@functools.lru_cache(maxsize=32)
def _pattern(name: str, with_id: bool, extra: tuple[str, ...], prefix: str, urlconf: str | None) -> str:
    return reverse(name, args=[_PK, *([_ID] if with_id else []), *extra], urlconf=urlconf)


def url(name: str, pk: int, container_id: str = "", *extra: str) -> str:
    """``reverse(name, args=[pk, container_id, *extra])`` reversed once per script prefix and
    URLconf, then the values put in place (a page of rows reverses a few hundred URLs)."""
    pattern = _pattern(name, bool(container_id), extra, get_script_prefix(), get_urlconf())
    found = pattern.replace(str(_PK), str(int(pk)), 1)
    # An engine's id, quoted as reverse() would: a hostile engine's text cannot leave the path.
    return found.replace(_ID, quote(container_id, safe=""), 1) if container_id else found


_STATE_CSS = {
    "running": "label-success",
    "exited": "label-danger",
    "dead": "label-danger",
    "created": "label-info",
}

# The same markup as hosts/fleet/container_state.html and container_actions.html, whose
# responses (an action's outcome) swap into these cells by their ids.
_STATE = '<span id="ctr-state-{pk}-{short}" class="label container-state {css}">{state}</span>'
_BUTTON = (
    '<button class="btn btn-sm btn-outline" hx-post="{url}" hx-target="closest td" hx-swap="innerHTML" '
    'data-action="{action}">{label}</button>'
)
_LINKS = (
    '<a class="btn btn-sm btn-outline" href="{recreate}" data-action="recreate">Recreate</a>'
    '<a class="btn btn-sm btn-danger-outline" href="{remove}" data-action="remove">Remove</a>'
)
_CONTAINER = (
    '<tr class="found-row" data-kind="container" data-name="{name}" data-host="{host}">'
    '<td class="left"><a href="{url}">{name}</a></td>'
    '<td class="left"><a href="{host_url}">{host}</a>{host_status}</td>'
    '<td class="left mono-wrap">{image}</td><td class="left">{state}</td>'
    '<td class="left">{ports}</td><td class="left">{labels}</td><td class="left">{seen}</td>'
    '<td class="left container-actions">{actions}</td></tr>\n'
)
_IMAGE = (
    '<tr class="found-row" data-kind="image" data-name="{name}" data-host="{host}">'
    '<td class="left">{tags}</td><td class="left"><code>{short}</code></td>'
    '<td class="left"><a href="{host_url}#images">{host}</a>{host_status}</td>'
    '<td class="left">{labels}</td><td class="left">{seen}</td></tr>\n'
)
_VOLUME = (
    '<tr class="found-row" data-kind="volume" data-name="{name}" data-host="{host}">'
    '<td class="left"><code class="mono-wrap">{name}</code></td><td class="left">{driver}</td>'
    '<td class="left"><a href="{host_url}#volumes">{host}</a>{host_status}</td>'
    '<td class="left">{labels}</td><td class="left">{seen}</td></tr>\n'
)
_NONE = "\u2013"  # an en dash, as the host page shows an empty cell
_UNTAGGED = mark_safe("&lt;none&gt;")


def _codes(lines: Iterable[str]) -> SafeString | str:
    return format_html_join(" ", '<code class="mono-wrap">{}</code>', ((line,) for line in lines)) or _NONE


def _host_status(row: EngineObject) -> SafeString | str:
    host = row.host
    if host.status == "on":
        return ""
    return format_html(' <span class="label label-warning">{}</span>', host.get_status_display())


def _actions(row: EngineObject) -> SafeString:
    pk, cid = row.host.pk, row.engine_id
    verbs = [("stop", "Stop"), ("restart", "Restart")] if row.running else [("start", "Start")]
    buttons = format_html_join(
        " ",
        _BUTTON,
        (
            {"url": url("hosts:container_action", pk, cid, verb), "action": verb, "label": label}
            for verb, label in verbs
        ),
    )
    recreate, remove = url("hosts:container_recreate", pk, cid), url("hosts:container_remove", pk, cid)
    links = format_html(_LINKS, recreate=recreate, remove=remove)
    return format_html("{} {}", buttons, links)


@register.simple_tag
def found_containers(rows: Iterable[tuple[EngineObject, bool]]) -> SafeString:
    """The container rows of a search: (row, whether the reader may act on it)."""
    out = []
    for row, can_act in rows:
        state = format_html(
            _STATE,
            pk=int(row.host.pk),
            short=row.short_id,
            css=_STATE_CSS.get(row.state, "label-warning"),
            state=row.state,
        )
        out.append(
            format_html(
                _CONTAINER,
                name=row.name,
                host=row.host.name,
                url=url("hosts:container", row.host.pk, row.engine_id),
                host_url=url("hosts:host", row.host.pk),
                host_status=_host_status(row),
                image=row.image,
                state=state,
                ports=format_html_join(" ", "<code>{}</code>", ((p,) for p in row.ports)) or _NONE,
                labels=_codes(row.label_lines),
                seen=when(row.updated),
                actions=_actions(row) if can_act else "",
            )
        )
    return mark_safe("".join(out))  # noqa: S308 - each row built by format_html


@register.simple_tag
def found_images(rows: Iterable[EngineObject]) -> SafeString:
    out = [
        format_html(
            _IMAGE,
            name=row.name,
            host=row.host.name,
            tags=_codes(row.image.splitlines()) if row.image else _UNTAGGED,
            short=row.short_id,
            host_url=url("hosts:host", row.host.pk),
            host_status=_host_status(row),
            labels=_codes(row.label_lines),
            seen=when(row.updated),
        )
        for row in rows
    ]
    return mark_safe("".join(out))  # noqa: S308 - each row built by format_html


@register.simple_tag
def found_volumes(rows: Iterable[EngineObject]) -> SafeString:
    out = [
        format_html(
            _VOLUME,
            name=row.name,
            host=row.host.name,
            driver=row.state or _NONE,
            host_url=url("hosts:host", row.host.pk),
            host_status=_host_status(row),
            labels=_codes(row.label_lines),
            seen=when(row.updated),
        )
        for row in rows
    ]
    return mark_safe("".join(out))  # noqa: S308 - each row built by format_html
