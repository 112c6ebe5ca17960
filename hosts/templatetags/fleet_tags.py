"""Template helpers for the fleet page's rows, which a page renders fifty at a time."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from django import template
from django.template.defaultfilters import filesizeformat
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from .vsphere_tags import host_vm, power_label

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


# -- A page of rows ---------------------------------------------------------------------------------
#
# The fleet page's fifty rows were three quarters of its render in the template language
# (about 190 µs a row, measured at 10,000 hosts); written here, the page's p50 went from
# 26 to 18.5 ms on PostgreSQL. Every value goes through format_html, so all of it is escaped.

_STATUS_CSS = {"on": "success", "suspect": "warning", "off": "danger"}

_ROW = (
    '<tr id="host-{pk}" class="host-row" data-status="{status}" data-running="{running}">\n'
    '  <td class="left"><a href="{url}">{name}</a>{insecure}</td>\n'
    '  <td class="left">{status_label}</td>\n'
    '  <td class="left">{os}</td>\n'
    '  <td class="left">{engine}</td>\n'
    '  <td class="left containers"><span class="running">{running}</span> / '
    '<span class="total">{total}</span></td>\n'
    '  <td class="left patches" id="patches-{pk}">{patches}</td>\n'
    '  <td class="left">{cpus}</td>\n'
    '  <td class="left">{memory}</td>\n'
    '  <td class="left">{project}</td>\n'
    '  <td class="left">{tags}</td>\n'
    '  <td class="left placement" id="placement-{pk}">{placement}</td>\n'
    "</tr>"
)
_INSECURE = mark_safe(
    ' <span class="label label-danger insecure-flag" title="Plain, unauthenticated Docker endpoint">'
    "insecure</span>"
)
_TAG = '<span class="label">{}</span>'
_NONE = "—"


_SEVERITY_CSS = {"Critical": "danger", "Important": "warning", "Moderate": "info", "Low": "info"}
_SEVERITY = (
    '<span class="label label-{} severity" data-severity="{}" title="{} security advisories">{} {}</span>'
)
_NO_SECURITY = mark_safe('<span class="label label-success severity" data-severity="none">no security</span>')
_STALE = ' <span class="label label-warning patches-error" title="The last check failed: {}">stale</span>'


@register.simple_tag
def patch_counts(host: Any) -> SafeString:
    """Pending security advisories by severity as badges, and the number of pending updates
    (hosts.patches; the row's prefetched ``patch_status``). Nothing read yet: a dash."""
    found = getattr(host, "patch_status", None)  # a missing one-to-one raises an AttributeError
    if found is None or found.read_at is None:
        error = found.last_error if found is not None else ""
        title = format_html(' title="{}"', error) if error else ""
        return format_html('<span class="p7 patches-none"{}>{}</span>', title, _NONE)
    severities = found.by_severity()
    rows = ((_SEVERITY_CSS.get(name, "info"), name, name, name, count) for name, count in severities)
    updates = found.pending_updates
    return format_html(
        '{} <span class="p7 pending-updates" data-updates="{}">{} update{}</span>{}',
        format_html_join(" ", _SEVERITY, rows) if severities else _NO_SECURITY,
        updates,
        updates,
        "" if updates == 1 else "s",
        format_html(_STALE, found.last_error) if found.last_error else "",
    )


@register.simple_tag
def host_status_label(host: Any) -> SafeString:
    """The host's status as a coloured label, its last error as the title."""
    title = format_html(' title="{}"', host.last_error) if host.last_error else ""
    return format_html(
        '<span class="label host-status label-{}" data-status="{}"{}>{}</span>',
        _STATUS_CSS.get(host.status, "info"),
        host.status,
        title,
        host.get_status_display(),
    )


def _os(host: Any) -> SafeString | str:
    if not host.os_name:
        return mark_safe(f'<span class="p7">{_NONE}</span>')  # noqa: S308 - a constant
    if host.os_version and host.os_version not in host.os_name:
        return f"{host.os_name} {host.os_version}"
    return str(host.os_name)


def _placement(host: Any) -> SafeString | str:
    vm = host_vm(host)
    if vm is None:
        return ""
    return format_html(
        '{} <span class="placement-where" title="cluster / ESXi host">{} / {}</span>',
        power_label(vm),
        (vm.cluster.name if vm.cluster else "") or _NONE,
        (vm.esx_host.name if vm.esx_host else "") or _NONE,
    )


@register.simple_tag
def host_rows(hosts: Iterable[Any]) -> SafeString:
    """The fleet page's rows of ``hosts`` (loaded by hosts.fleet.rows: project, tags, VMs)."""
    rows = []
    for host in hosts:
        rows.append(
            format_html(
                _ROW,
                pk=int(host.pk),
                status=host.status,
                running=int(host.containers_running or 0),
                total=int(host.containers_total or 0),
                url=host_url(host.pk),
                name=host.name,
                insecure=_INSECURE if host.insecure else "",
                status_label=host_status_label(host),
                os=_os(host),
                engine=host.engine_version or _NONE,
                cpus=host.cpus or _NONE,
                memory=filesizeformat(host.memory) if host.memory else _NONE,
                project=host.project.name,
                tags=format_html_join("", _TAG, ((tag.name,) for tag in host.row_tags)),
                placement=_placement(host),
                patches=patch_counts(host),
            )
        )
    return mark_safe("".join(rows))  # noqa: S308 - each row built by format_html
