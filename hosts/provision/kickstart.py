"""Kickstart installs: a one-host request installed from Photon's ISO, and the kickstart
its installer fetches once with a one-time token."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

from django.utils import timezone

from hosts.models import Host, ProvisionedVm, ProvisionRequest
from hosts.provision import cloud_config, enrollment, tokens
from hosts.provision.checks import ProvisionError, check_quota, expand_names
from hosts.provision.seed import issue_seed
from hosts.provision.vm_state import set_state
from portal import audit, events

# --- kickstart installs ------------------------------------------------------------------------


def new_kickstart(project: Any, name: str, requester: Any, profile: Any = None) -> tuple[ProvisionedVm, str]:
    """A one-host request installed from Photon's ISO; returns it and its one-time kickstart token."""
    names = expand_names(name, 1)
    request = ProvisionRequest(
        project=project, requester=requester, vcenter=None, count=1, name_pattern=names[0], profile=profile
    )
    check_quota(request)
    taken = {n.lower() for n in Host.objects.filter(project=project).values_list("name", flat=True)}
    if names[0] in taken:
        raise ProvisionError(f"A host named {names[0]} exists in this project already.")
    request.save()
    token = secrets.token_urlsafe(32)
    pvm = ProvisionedVm.objects.create(
        request=request,
        name=names[0],
        instance_id=f"portal-{uuid.uuid4()}",
        token_hash=f"unissued-{uuid.uuid4().hex}"[:64],
        token_expires=tokens.expiry(),
        kickstart_hash=hashlib.sha256(token.encode()).hexdigest(),
        state=ProvisionedVm.State.WAITING,
        waiting_since=timezone.now(),
        detail="Waiting for the installer to fetch its kickstart.",
    )
    audit.record("provision.kickstart", obj=pvm, project=project, actor=requester)
    return pvm, token


def kickstart_for(token: str, enroll_base_url: str) -> dict[str, Any]:
    """The kickstart behind a one-time token; served once (an installer that retries gets a new URL)."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    pvm = (
        ProvisionedVm.objects.select_related("request__project", "request__profile")
        .filter(kickstart_hash=digest)
        .first()
        if token
        else None
    )
    if pvm is None:
        raise enrollment.EnrollmentRefused("unknown kickstart token")
    if pvm.token_expires <= timezone.now():
        raise enrollment.EnrollmentRefused("the kickstart token has expired")
    if not ProvisionedVm.objects.filter(pk=pvm.pk, kickstart_used__isnull=True).update(
        kickstart_used=timezone.now()
    ):
        events.notify_repeated(
            f"kickstart-refused:{pvm.pk}",
            f"Kickstart of {pvm.name} refused: the URL was already used",
            severity="warning",
            obj=pvm,
            project=pvm.request.project_id,
        )
        raise enrollment.EnrollmentRefused("the kickstart URL was already used")
    seed, fingerprint = issue_seed(pvm, enroll_base_url)
    set_state(
        pvm,
        ProvisionedVm.State.WAITING,
        "Installing; waiting for the host to phone home.",
        tls_fingerprint=fingerprint,
    )
    profile = pvm.request.profile.settings if pvm.request.profile else {}
    return cloud_config.kickstart(seed, profile)
