"""The cyclic collector paused around bulk reads, and always given back."""

from __future__ import annotations

import gc
import threading

import pytest

from portal.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def _collector_restored():
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_runs_again_when_the_last_of_overlapping_pauses_ends():
    gc.enable()
    first, second = gc_paused(), gc_paused()
    first.__enter__()
    assert not gc.isenabled()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled(), "a pause that ended early must not resume another's"
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_pause_gives_the_collector_back_when_its_block_raises():
    gc.enable()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("a vCenter died mid-read")
    assert gc.isenabled()


def test_a_collector_someone_else_disabled_stays_disabled():
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_pauses_on_threads_share_one_count():
    gc.enable()
    inside, release = threading.Barrier(3), threading.Event()

    def hold() -> None:
        with gc_paused():
            inside.wait()
            release.wait()

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    inside.wait()
    assert not gc.isenabled()
    release.set()
    for thread in threads:
        thread.join()
    assert gc.isenabled()
