"""What people ask of provisioning, for the UI and the API alike: start a checked request."""

from __future__ import annotations

import uuid

from django.db import transaction

from hosts.models import ProvisionedVm, ProvisionRequest
from hosts.provision import tasks, tokens
from hosts.provision.checks import check
from hosts.vsphere import client as vsphere
from portal import audit


def start(
    request: ProvisionRequest, *, enroll_base_url: str, si: vsphere.ServiceInstance
) -> list[ProvisionedVm]:
    """Check ``request`` (already saved), make its VM rows, and queue the clones."""
    plan = check(request, si)
    request.template_name = plan.template_name
    request.save(update_fields=["template_name"])
    pvms = [
        ProvisionedVm.objects.create(
            request=request,
            name=name,
            instance_id=f"portal-{uuid.uuid4()}",
            token_hash=f"unissued-{uuid.uuid4().hex}"[:64],
            token_expires=tokens.expiry(),
        )
        for name in plan.names
    ]
    audit.record("provision.request", obj=request, project=request.project, after={"names": plan.names})
    transaction.on_commit(lambda: tasks.run_request.delay(request.pk, enroll_base_url))
    return pvms
