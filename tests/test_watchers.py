"""Watchers: shards split the fleet, and one watcher failing never stops the others."""

from __future__ import annotations

import asyncio

import pytest

from portal import watchers
from portal.watchers import Shard


def test_shards_cover_every_object_exactly_once() -> None:
    shards = [Shard(i, 4) for i in range(1, 5)]
    for pk in range(1, 200):
        assert sum(shard.owns(pk) for shard in shards) == 1


@pytest.mark.parametrize("text", ["0/4", "5/4", "x", "1/0", ""])
def test_bad_shards_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="I/N"):
        Shard.parse(text)


def test_a_failing_watcher_is_restarted_and_does_not_stop_the_others(monkeypatch) -> None:
    calls = {"flaky": 0, "steady": 0}
    steady_ran = asyncio.Event()

    async def flaky(shard: Shard) -> None:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise RuntimeError("engine went away")

    async def steady(shard: Shard) -> None:
        calls["steady"] += 1
        steady_ran.set()

    async def no_backoff(delay: float) -> None:
        return None

    monkeypatch.setattr(watchers, "WATCHERS", {"flaky": flaky, "steady": steady})
    monkeypatch.setattr(watchers.asyncio, "sleep", no_backoff)
    asyncio.run(watchers.run_all(Shard()))
    assert calls == {"flaky": 2, "steady": 1}
