"""Queueing a task once its rows are committed, and saying so at once when the broker is down.

A service records what was asked (a row that says "queued"), commits it, then publishes
the task: a worker must never look for a row that is not there yet. Publishing makes one
try on a connection of its own (one Redis connect per person's action: cheap) that
neither retries nor waits longer than the connect timeout (2 s), so with Redis down the
request learns it at once (refused: 0.03 s measured) instead of after Celery's retries
(19 s measured); the caller's ``unqueued`` then marks its row failed with ``NOT_QUEUED``,
and ``QueueUnavailable`` (a ``Refused``, 503) tells the person, in the UI and the API alike.

Embedded (no broker) the task runs on a thread of this process (``portal.celery``):
publishing there cannot fail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from celery import Task
from django.db import transaction
from kombu.exceptions import KombuError, OperationalError
from redis.exceptions import RedisError

from .refused import Refused

log = logging.getLogger(__name__)

NOT_QUEUED = "could not be queued: the task broker (Redis) did not answer; try again"

#: One connection attempt per publish (no retries), each bounded by the transport's
#: socket_connect_timeout (settings.CELERY_BROKER_TRANSPORT_OPTIONS).
_ONE_TRY = {"max_retries": 0}
_BROKER_DOWN = (OperationalError, KombuError, RedisError, OSError)


class QueueUnavailable(Refused):
    """The broker did not take the task: whatever was recorded for it is marked failed."""

    def __init__(self, message: str = NOT_QUEUED) -> None:
        super().__init__(message[:1].upper() + message[1:] + ".", status=503)


def _publish(task: Task, args: tuple[Any, ...]) -> None:
    if task.app.conf.task_always_eager:
        task.apply_async(args)  # portal.celery: a thread of this process
        return
    with task.app.connection_for_write(transport_options=_ONE_TRY) as connection:
        task.apply_async(args, retry=False, connection=connection)


def _send_all(
    task: Task, calls: Sequence[tuple[Any, ...]], unqueued: Callable[[tuple[Any, ...], str], object]
) -> None:
    for index, args in enumerate(calls):
        try:
            _publish(task, args)
        except _BROKER_DOWN as exc:
            log.warning("%s%r %s: %s", task.name, args, NOT_QUEUED, exc)
            # The broker is down: the calls after this one are not tried, and none may
            # stay "queued" with no message behind it.
            for left in calls[index:]:
                unqueued(left, NOT_QUEUED)
            raise QueueUnavailable() from exc


def _ignore(_args: tuple[Any, ...], _message: str) -> None:
    return None


def enqueue(task: Task, *args: Any, unqueued: Callable[[str], object] | None = None) -> None:
    """Send ``task(*args)`` once the current transaction commits (now, outside one).
    Broker down: ``unqueued(message)`` (mark the row failed), then ``QueueUnavailable``,
    raised here or, inside ``transaction.atomic``, where that block commits."""
    enqueue_each(task, [args], unqueued=(lambda _args, message: unqueued(message)) if unqueued else _ignore)


def enqueue_each(
    task: Task,
    calls: Sequence[tuple[Any, ...]],
    *,
    unqueued: Callable[[tuple[Any, ...], str], object] = _ignore,
) -> None:
    """``enqueue`` for several calls of one task: with the broker down, every call not sent
    gets ``unqueued(args, message)``."""
    calls = list(calls)
    if calls:
        _after_commit(lambda: _send_all(task, calls, unqueued))


def enqueue_or_leave(task: Task, *args: Any) -> None:
    """Send ``task(*args)`` once the current transaction commits, for follow-up work nobody
    waits on and a sweep sends again: with the broker down it is logged, never raised (what
    committed stands, and whoever committed it is not told it failed)."""

    def send() -> None:
        try:
            _publish(task, args)
        except _BROKER_DOWN as exc:
            log.warning("%s%r %s (it is retried later): %s", task.name, args, NOT_QUEUED, exc)

    _after_commit(send)


def _after_commit(send: Callable[[], None]) -> None:
    # Not robust: what ``send`` raises reaches whoever committed (the request).
    transaction.on_commit(send)
