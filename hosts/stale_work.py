"""Work that is never silently stuck: VM actions, deploys, applications' deploys and updates,
and provisioned VMs left "queued"
or "running" far longer than they can take are marked failed, with a reason, on their pages
and My work.

Left so when no worker takes their message (all stopped, or the broker lost it) or when the
worker running them died and the message is not given back before Redis's visibility
timeout (settings.TASK_VISIBILITY_TIMEOUT). A message that still arrives later finds its row
ended and runs nothing. Called by the "stale work" watcher and the periodic drift check.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from hosts.applications import tasks as app_tasks
from hosts.fleet import tasks as fleet_tasks
from hosts.models import Application, Deploy, ProvisionedVm, ProvisionRequest, VmTask
from hosts.provision import tasks as provision_tasks
from hosts.vsphere import tasks as vsphere_tasks

log = logging.getLogger(__name__)

#: Never taken by a worker within this: the workers are down (or the message was lost).
NOT_TAKEN = "no task worker took this within {minutes} minutes; check that the workers run, and try again"

#: How long each kind may be queued, and running, before it is failed. A VM action gives up
#: after ACTION_TIMEOUT (5 min); a deploy pulls its image (large ones take minutes); a
#: provisioning request clones its VMs one after another, so its last VMs wait for the others.
VM_TASK_QUEUED = timedelta(minutes=30)
VM_TASK_RUNNING = timedelta(seconds=vsphere_tasks.ACTION_TIMEOUT) + timedelta(minutes=10)
DEPLOY_QUEUED = timedelta(minutes=30)
DEPLOY_RUNNING = timedelta(hours=1)
PROVISION_STUCK = timedelta(hours=3)


@dataclass
class Swept:
    vm_tasks: int = 0
    deploys: int = 0
    provisioned_vms: int = 0
    applications: int = 0

    @property
    def total(self) -> int:
        return self.vm_tasks + self.deploys + self.provisioned_vms + self.applications


def _not_taken(bound: timedelta) -> str:
    return NOT_TAKEN.format(minutes=int(bound.total_seconds() // 60))


#: (state, how long it may stay in it, the reason it fails with)
Bounds = list[tuple[str, timedelta, str]]


def _vm_tasks(now: Any) -> int:
    bounds: Bounds = [
        (VmTask.State.QUEUED, VM_TASK_QUEUED, _not_taken(VM_TASK_QUEUED)),
        (VmTask.State.RUNNING, VM_TASK_RUNNING, vsphere_tasks.WORKER_STOPPED),
    ]
    failed = 0
    for state, bound, reason in bounds:
        stale = VmTask.objects.filter(state=state, started__lt=now - bound)
        for task in stale.select_related("vm__host", "actor"):
            failed += vsphere_tasks.not_run(task, reason)
    return failed


def _deploys(now: Any) -> int:
    bounds: Bounds = [
        (Deploy.State.QUEUED, DEPLOY_QUEUED, _not_taken(DEPLOY_QUEUED)),
        (Deploy.State.RUNNING, DEPLOY_RUNNING, fleet_tasks.WORKER_STOPPED),
    ]
    failed = 0
    for state, bound, reason in bounds:
        stale = Deploy.objects.filter(state=state, created__lt=now - bound)
        for found in stale.select_related("host__project"):
            failed += fleet_tasks.not_run(found, reason)
    return failed


def _applications(now: Any) -> int:
    # "updated" moves when a deploy or an update is queued, and when its task takes it.
    bounds: Bounds = [
        (Application.State.QUEUED, DEPLOY_QUEUED, _not_taken(DEPLOY_QUEUED)),
        (Application.State.DEPLOYING, DEPLOY_RUNNING, app_tasks.WORKER_STOPPED),
    ]
    failed = 0
    for state, bound, reason in bounds:
        for found in Application.objects.filter(state=state, updated__lt=now - bound):
            failed += app_tasks.not_run(found, state, reason)
    return failed


def _provisioned_vms(now: Any) -> int:
    # "updated" moves with each step; waiting and powering on end by the enrollment
    # deadline instead (hosts.provision.flow.fail_overdue).
    reasons = {
        ProvisionedVm.State.QUEUED: _not_taken(PROVISION_STUCK),
        ProvisionedVm.State.CLONING: provision_tasks.WORKER_STOPPED,
    }
    before = now - PROVISION_STUCK
    stuck = ProvisionRequest.objects.filter(vms__state__in=list(reasons), vms__updated__lt=before).distinct()
    failed = 0
    for request in stuck:
        for state, reason in reasons.items():
            failed += len(provision_tasks.fail_unfinished(request, reason, (state,), updated_before=before))
    return failed


def sweep(now: Any = None) -> Swept:
    """Fail what has been queued or running too long; how many of each."""
    now = now or timezone.now()
    swept = Swept(
        vm_tasks=_vm_tasks(now),
        deploys=_deploys(now),
        provisioned_vms=_provisioned_vms(now),
        applications=_applications(now),
    )
    if swept.total:
        log.warning("stale work failed: %s", swept)
    return swept


async def watch_stale_work(shard: Any) -> None:
    """The watcher (portal.watchers) that sweeps stale work; one shard is enough (the
    queries are small and each update is guarded)."""
    while True:
        try:
            if shard.index == 1:
                # Not a bare sync_to_async: this closes the thread's connection after each pass,
                # back to the pool, instead of an idle executor thread holding one for good.
                await database_sync_to_async(sweep, thread_sensitive=False)()
        except Exception:
            log.exception("sweeping stale work failed")
        await asyncio.sleep(settings.STALE_WORK_INTERVAL)  # a schedule, not a wait on a condition
