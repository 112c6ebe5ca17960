"""Tasks the services queue, recorded instead of sent (portal.queueing): no worker runs them."""

from __future__ import annotations

from collections.abc import Callable
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
