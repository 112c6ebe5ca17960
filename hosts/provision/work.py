"""Provisioning requests on My work. A request has no state of its own: its status is its
VMs' (``summary``), so every VM that moves moves the request's row."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from hosts.models import ProvisionRequest
from hosts.provision.summary import summary
from portal import access, work

_BUCKETS = {"running": "running", "done": "done", "failed": "failed", "partial": "failed"}


def provision_request(req: ProvisionRequest, states: list[str] | None = None) -> work.Request:
    """The row of a provisioning request; prefetch its ``vms`` (or pass their ``states``)."""
    status = summary(req, states)
    note = ""
    if status.status in ("failed", "partial"):
        # What went wrong, told once: the first VM that failed says why.
        note = next((vm.detail for vm in req.vms.all() if vm.state == "failed"), "")
    if req.vcenter_id is None:
        title = f"kickstart {req.name_pattern}"
    else:
        times = f" \N{MULTIPLICATION SIGN}{req.count}" if req.count != 1 else ""
        title = f"provision {req.name_pattern}{times}"
    return work.Request(
        kind="provision",
        pk=req.pk,
        title=title,
        url=reverse("hosts:provision_request", args=[req.pk]),
        project=req.project.name,
        status=status.status,
        status_label=status.label,
        bucket=_BUCKETS[status.status],
        progress=status.progress if status.status == "running" else None,
        when=req.created,
        note=note,
    )


def rows(user: Any) -> list[work.Request]:
    provisions = (
        ProvisionRequest.objects.filter(requester=user, project__in=access.projects(user, "provision.view"))
        .select_related("project")
        .prefetch_related("vms")  # each row's status is its VMs': one query for all of them
    )
    return [provision_request(p) for p in provisions[: work.LIMIT]]


def publish(req: ProvisionRequest) -> None:
    """News of the request for its requester's My work. Never raises."""
    if not req.requester_id:
        return

    def build() -> work.Request:
        # Read again: the row is every VM's state, not only the one that just moved.
        fresh = ProvisionRequest.objects.select_related("project").prefetch_related("vms").get(pk=req.pk)
        return provision_request(fresh)

    work.publish_row(
        req.requester_id, build, key="provision", pk=req.pk, name=f"provisioning request {req.pk}"
    )
