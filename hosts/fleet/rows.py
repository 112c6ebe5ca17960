"""What a host's row on the fleet page (hosts/fleet/host_rows.html) reads, loaded for a page
of rows at once, so a page costs the same few queries whatever the fleet's size."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Prefetch, QuerySet, prefetch_related_objects

from hosts.models import Host, HostPatchStatus, Tag

#: The host's own fields a row shows: not its secrets (decrypted on load) nor its certificates.
FIELDS = (
    "pk",
    "project",
    "name",
    "insecure",
    "status",
    "last_error",
    "os_name",
    "os_version",
    "engine_version",
    "containers_running",
    "containers_total",
    "cpus",
    "memory",
    "project__name",
)


def prefetches() -> list[Any]:
    """The row's tags (``host.row_tags``), its patch counts (``host.patch_status``) and, when that
    app's VMs link to hosts, its vSphere placement (``host.row_vms``, issue 5): lists, not
    managers, which a page pays for per row."""
    found: list[Any] = [
        Prefetch("tags", queryset=Tag.objects.all(), to_attr="row_tags"),
        # The pending advisories column (hosts.patches): the counts, never the package lists.
        Prefetch("patch_status", queryset=HostPatchStatus.objects.only(*HostPatchStatus.ROW_FIELDS)),
    ]
    try:
        vms = Host._meta.get_field("vms").related_model
    except FieldDoesNotExist:
        return found
    assert isinstance(vms, type)  # a reverse relation's model class (not None, not "self")
    # VirtualMachine has no custom manager: its default manager is objects.
    queryset = vms._default_manager.select_related("esx_host", "cluster")
    return [*found, Prefetch("vms", queryset=queryset, to_attr="row_vms")]


#: The patch status's counts a row shows, joined (no query of its own on a page).
PATCH_FIELDS = tuple(f"patch_status__{name}" for name in HostPatchStatus.ROW_FIELDS if name != "host")


def page(hosts: QuerySet[Host]) -> QuerySet[Host]:
    """A queryset of hosts as rows: what they show, with their project, patch counts, tags and
    placement."""
    return (
        hosts.select_related("project", "patch_status")
        .only(*FIELDS, *PATCH_FIELDS)
        .prefetch_related(*prefetches())
    )


def load(hosts: Iterable[Host]) -> None:
    """Give hosts loaded elsewhere (one published live) what a row reads."""
    prefetch_related_objects(list(hosts), *prefetches())
