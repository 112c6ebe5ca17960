"""Tasks the services queue, recorded instead of sent (portal.queueing): no worker runs them;
or sent to a broker that is down."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest


def _whole(name: str, args: tuple[Any, ...]) -> Any:
    return (name, args)


def record_queued(
    monkeypatch: pytest.MonkeyPatch, shape: Callable[[str, tuple[Any, ...]], Any] = _whole
) -> list[Any]:
    """Each task queued from now on, as ``shape(task name, args)``. Recorded as if its
    transaction had committed: a ``django_db`` test's own transaction never does."""
    from portal import queueing

    sent: list[Any] = []
    monkeypatch.setattr(queueing, "_publish", lambda task, args: sent.append(shape(task.name, args)))
    monkeypatch.setattr(queueing, "_after_commit", lambda send: send())
    return sent


@contextlib.contextmanager
def broker_down() -> Iterator[None]:
    """Tasks go to a Redis broker on a port nobody listens on (in both topologies: the
    embedded one is made to publish as the production one does)."""
    from portal.celery import app
    from tests.lab.common import free_port

    before = {"task_always_eager": app.conf.task_always_eager, "broker_url": app.conf.broker_url}
    app.conf.update(task_always_eager=False, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    try:
        yield
    finally:
        app.conf.update(before)
