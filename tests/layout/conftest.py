"""A small portal with one of everything a page shows: a host, a vCenter and its VM, a
change with its run, a drift row, a provisioning request with a waiting VM, audit entries,
events and an API token. Nothing is contacted: the host and the vCenter are disabled."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from hosts.models import (
    Change,
    ChangeRun,
    Drift,
    Host,
    Profile,
    ProvisionedVm,
    ProvisionRequest,
    VCenter,
    VirtualMachine,
    VmTask,
)
from portal import api_auth, audit, events
from portal.models import Project
from registry.models import Registry

#: A SHA-256 fingerprint as vCenter and Docker show them: 95 characters without a space.
FINGERPRINT = ":".join(["AB"] * 32)
DIGEST = "sha256:" + "0123456789abcdef" * 4


@dataclass
class World:
    admin: Any
    project: Project
    host: Host
    vcenter: VCenter
    vm: VirtualMachine
    change: Change
    request: ProvisionRequest
    pvm: ProvisionedVm
    registry: Registry


@pytest.fixture
def world(make_user) -> World:  # type: ignore[no-untyped-def]
    admin = make_user("root", admin=True)
    project = Project.objects.create(name="fleet")
    long_ago = timezone.now() - datetime.timedelta(days=3)
    host = Host.objects.create(
        project=project,
        name="photon-1",
        docker_url="tcp://photon-1.example.internal.long-domain-name.example.com:2376",
        enabled=False,
        last_seen=long_ago,
        tls_fingerprint=FINGERPRINT,
    )
    vcenter = VCenter.objects.create(
        name="vc-1",
        url="https://vc.example.com/sdk",
        username="u",
        enabled=False,
        thumbprint=FINGERPRINT,
        last_sync=long_ago,
    )
    vm = VirtualMachine.objects.create(
        vcenter=vcenter, moref="vm-1", name="vm-photon-1", power_state="poweredOn"
    )
    VmTask.objects.create(vm=vm, action="snapshot", argument="before-upgrade")
    profile = Profile.objects.create(project=project, name="hardened")
    change = Change.objects.create(
        project=project, title="Apply profile hardened", created_by=admin, status="applied"
    )
    ChangeRun.objects.create(change=change, host=host, state="applied")
    Drift.objects.create(host=host, profile=profile, state="drifted", diff="-a\n+b\n")
    request = ProvisionRequest.objects.create(
        project=project, requester=admin, vcenter=vcenter, template_name="photon-5", name_pattern="web-{n}"
    )
    pvm = ProvisionedVm.objects.create(
        request=request,
        name="web-1",
        instance_id="i-1",
        state="waiting",
        token_hash="t" * 64,
        token_expires=timezone.now() + datetime.timedelta(hours=1),
        waiting_since=long_ago,
    )
    audit.record("host.add", obj=host, project=project, actor=admin)
    events.notify("photon-1 is unreachable", obj=host, project=project)
    api_auth.issue(admin, "laptop")
    # Nothing listens on port 9: its pages say so at once.
    registry = Registry.objects.create(name="lab", url="http://127.0.0.1:9")
    return World(admin, project, host, vcenter, vm, change, request, pvm, registry)
