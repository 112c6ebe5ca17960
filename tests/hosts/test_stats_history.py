"""A container's and a host's last hour of resources (issue 17), without an engine: the engine's
counters turned into rates, the ring buffer keeping one sample every STEP seconds and nothing
older than an hour, and the charts' history asked by those who may see the host only. On the
suite's PostgreSQL run the buffer is Redis; on the embedded one, this process."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from django.urls import reverse

from hosts.models import Host
from hosts.stats import history
from hosts.stats.sampling import Sample, between, counters, total

pytestmark = pytest.mark.django_db


def reading(
    at: str, cpu: int, system: int, rx: int = 0, read: int = 0, usage: int = 50 << 20
) -> dict[str, Any]:
    """A ``/containers/ID/stats`` answer as Docker 20.10 gives it (cgroup v2), trimmed."""
    return {
        "read": at,
        "cpu_stats": {"cpu_usage": {"total_usage": cpu}, "system_cpu_usage": system, "online_cpus": 2},
        "memory_stats": {"usage": usage, "stats": {"inactive_file": 10 << 20}, "limit": 1 << 30},
        "networks": {"eth0": {"rx_bytes": rx, "tx_bytes": rx // 2}, "eth1": {"rx_bytes": rx, "tx_bytes": 0}},
        "blkio_stats": {
            "io_service_bytes_recursive": [{"op": "read", "value": read}, {"op": "write", "value": 0}]
        },
    }


def test_two_readings_give_rates_and_a_restart_gives_none() -> None:
    first = counters(reading("2026-12-06T20:00:00.000000000Z", cpu=1_000_000_000, system=100_000_000_000))
    second = counters(
        reading(
            "2026-12-06T20:00:02.500000000Z", cpu=2_000_000_000, system=105_000_000_000, rx=5000, read=10_000
        )
    )
    sample = between(first, second)
    assert sample is not None
    # 1 s of CPU over 5 s of two CPUs' time: 20 % of the machine, 40 % of one core (Docker's %).
    assert sample.cpu == 40.0
    assert sample.mem == 40 << 20  # the page cache the kernel can drop is not counted
    assert (sample.net_rx, sample.net_tx, sample.blk_r, sample.blk_w) == (4000.0, 1000.0, 4000.0, 0.0)
    assert sample.t == second.at
    # Counters that went back (the container restarted), or the same reading: no rate at all.
    assert between(second, first) is None and between(second, second) is None
    # A stopped container's answer is mostly empty: zeros, never an error.
    assert counters({"read": "0001-01-01T00:00:00Z"}).cpu == 0
    host = total([sample, sample], at=9.0)
    assert (host.t, host.cpu, host.mem, host.net_rx) == (9.0, 80.0, 80 << 20, 8000.0)


def test_the_buffer_keeps_one_sample_a_step_and_only_the_last_hour() -> None:
    host_id, series = 10_000 + uuid.uuid4().int % 100_000, uuid.uuid4().hex * 2
    now = time.time()
    history.forget(host_id, series)
    try:
        make = lambda t: Sample(t=t, cpu=1.0, mem=1, net_rx=0, net_tx=0, blk_r=0, blk_w=0)  # noqa: E731
        assert history.record(host_id, series, make(now))
        assert not history.record(host_id, series, make(now + 1))  # within the step: dropped
        assert [s.t for s in history.read(host_id, series)] == [now]
        history.forget(host_id, series)
        assert history.record(host_id, series, make(now - history.KEEP_SECONDS - 10))  # older than an hour
        history.forget(host_id + 1, series)
        assert [s.t for s in history.read(host_id, series)] == []
        assert history.read(host_id + 1, series) == []  # another host's series is its own
    finally:
        history.forget(host_id, series)


def test_the_history_is_for_those_who_see_the_host(client, people, project, other_project, make_user) -> None:
    host = Host.objects.create(project=project, name="h", docker_url="tcp://127.0.0.1:9", insecure=True)
    container = "c" * 64
    history.forget(host.pk, container)
    history.record(
        host.pk, container, Sample(t=time.time(), cpu=12.5, mem=3, net_rx=1, net_tx=2, blk_r=3, blk_w=4)
    )
    url = reverse("hosts:stats_history", args=[host.pk])
    try:
        client.force_login(people["viewer"])
        answer = client.get(url, {"series": container}).json()
        assert answer["series"] == container and answer["step"] == history.STEP
        assert [s["cpu"] for s in answer["samples"]] == [12.5]
        assert client.get(url).json()["samples"] == []  # the host's totals: none yet
        assert client.get(url, {"series": "../../etc"}).status_code == 404
        client.force_login(make_user("stranger", project=other_project, role="project_admin"))
        assert client.get(url, {"series": container}).status_code == 404
    finally:
        history.forget(host.pk, container)
