"""VM power and snapshot actions on My work: the requester's rows, and the row's news
whenever a task moves (``hosts.vsphere.tasks.publish_task``)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from hosts.models import VmTask
from portal import access, work

# Task states grouped the way the Requests view filters them.
_RUNNING = {"queued", "running"}
_FAILED = {"error"}


def vm_task_request(task: VmTask) -> work.Request:
    state = str(task.state)
    bucket = "running" if state in _RUNNING else "failed" if state in _FAILED else "done"
    host = task.vm.host
    project = host.project.name if host is not None else ""
    return work.Request(
        kind="vm",
        pk=task.pk,
        title=f"{task.action} {task.vm.name}" + (f" ({task.argument})" if task.argument else ""),
        url=reverse("hosts:vm", args=[task.vm_id]),
        project=project,
        status=state,
        status_label=task.get_state_display(),
        bucket=bucket,
        progress=task.progress if state == "running" else None,
        when=task.started,
        note=task.error,
    )


def rows(user: Any) -> list[work.Request]:
    tasks = VmTask.objects.filter(actor=user).select_related("vm__host__project")
    if not access.is_admin(user):
        tasks = tasks.filter(vm__host__project__in=access.projects(user, "project.view"))
    return [vm_task_request(t) for t in tasks[: work.LIMIT]]


def publish(task: VmTask) -> None:
    """News of the task for its requester's My work. Never raises."""
    if task.actor_id:
        work.publish_row(
            task.actor_id,
            lambda: vm_task_request(task),
            key="vm_task",
            pk=task.pk,
            name=f"VM task {task.pk}",
            status_key="state",
        )
