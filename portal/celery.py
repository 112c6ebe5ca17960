"""The Celery app.

With a broker (REDIS_URL) tasks go to `celery worker` processes. Without one (the
embedded default) ``PortalTask.apply_async`` runs the task on a thread of the
portal's own process, so ``task.delay()`` neither needs a broker nor blocks the
request that called it. Work that others must see writes to the database (the
truth) and publishes live events; a task's return value is only for its caller.
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from celery import Celery, Task
from celery.signals import heartbeat_sent, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

# Bounded: the embedded default is for one person trying the portal, not a fleet.
_in_process = ThreadPoolExecutor(max_workers=4, thread_name_prefix="portal-task")


class InProcessResult:
    """The part of ``AsyncResult`` callers use, for a task running on a local thread."""

    def __init__(self, task_id: str, future: Future[Any]) -> None:
        self.id = task_id
        self._future = future

    def ready(self) -> bool:
        return self._future.done()

    def get(self, timeout: float | None = None) -> Any:
        return self._future.result(timeout=timeout)


def _run_in_process(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any], task_id: str) -> Any:
    # Imported when a task runs: this module is loaded before Django's settings are.
    from django.db import close_old_connections

    try:
        result = task.apply(args=args, kwargs=kwargs, task_id=task_id)
        return result.get(propagate=True)
    finally:
        close_old_connections()


class PortalTask(Task):
    def apply_async(self, args=None, kwargs=None, task_id=None, **options):
        if not self.app.conf.task_always_eager:
            return super().apply_async(args, kwargs, task_id=task_id, **options)
        task_id = task_id or str(uuid.uuid4())
        future = _in_process.submit(_run_in_process, self, tuple(args or ()), dict(kwargs or {}), task_id)
        return InProcessResult(task_id, future)


app = Celery("portal", task_cls=PortalTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@heartbeat_sent.connect
def _worker_beats(sender: Any, **kwargs: Any) -> None:
    """Celery's own worker heartbeat (every 2 s), recorded where /healthz reads it."""
    # Imported when a worker beats: this module is loaded before Django's settings are.
    from portal import heartbeats

    heartbeats.beat(f"worker:{sender.eventer.hostname}")


@worker_shutdown.connect
def _worker_leaves(sender: Any, **kwargs: Any) -> None:
    # As above: imported once the worker runs, settings loaded.
    from portal import heartbeats

    heartbeats.forget(f"worker:{sender.hostname}")
