"""A provisioned VM's state: saved, then published to its request's page and (the whole
request as one row) to the requester's My work."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from hosts.models import ProvisionedVm, ProvisionRequest
from hosts.provision import work
from portal import live


def topic(request: ProvisionRequest) -> str:
    return f"project:{request.project_id}:provision:{request.pk}"


def publish_vm(pvm: ProvisionedVm) -> None:
    html = render_to_string("hosts/provision/partials/vm_row.html", {"pvm": pvm})
    live.publish(topic(pvm.request), html=html, data={"vm": pvm.pk, "state": pvm.state})
    # The requester's My work shows the whole request as one row, and its status is its
    # VMs': every VM that moves moves that row.
    work.publish(pvm.request)


def set_state(pvm: ProvisionedVm, state: str, detail: str = "", **fields: Any) -> None:
    if state == ProvisionedVm.State.WAITING and pvm.state != state:
        fields.setdefault("waiting_since", timezone.now())
    pvm.state, pvm.detail = state, detail
    for name, value in fields.items():
        setattr(pvm, name, value)
    pvm.save(update_fields=["state", "detail", "updated", *fields])
    publish_vm(pvm)
