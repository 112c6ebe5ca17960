"""The watcher: container events change the fleet at once; a dead engine goes SUSPECT, OFF, back ON."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from hosts.models import Host, HostStatus
from portal.models import Event
from tests.hosts.conftest import trusted_host
from tests.hosts.watching import kill_dockerd, running_watcher, start_dockerd
from tests.lab import engines
from tests.lab.common import wait_until
from tests.lab.fixtures import start

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lab]


@pytest.fixture
def private_engine(tmp_path: Path, lab_engines: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    """An engine of this test's own, to stop and start (the session's are shared)."""
    workdir = tmp_path / "engines"
    (engine_info,) = start(lambda: engines.up(workdir, plain=1, tls=0))
    yield workdir, engine_info
    engines.down(workdir)


def _host(pk: int) -> Host:
    return Host.objects.get(pk=pk)


@pytest.mark.timeout(240)
def test_dead_engine_goes_suspect_then_off_and_back_on_while_others_keep_updating(
    private_engine, project, other_project, tls_engine, no_env_ca
) -> None:
    workdir, info = private_engine
    doomed = trusted_host(info, project, "doomed")
    steady = trusted_host(tls_engine, other_project, "steady")
    with running_watcher(interval=1.0):
        wait_until(lambda: _host(doomed.pk).status == HostStatus.ON, timeout=20, what="doomed ON")
        wait_until(lambda: _host(steady.pk).status == HostStatus.ON, timeout=20, what="steady ON")

        kill_dockerd(workdir, info["name"])
        wait_until(lambda: _host(doomed.pk).status == HostStatus.SUSPECT, timeout=20, what="SUSPECT")
        wait_until(lambda: _host(doomed.pk).status == HostStatus.OFF, timeout=30, what="OFF")
        assert _host(doomed.pk).failures >= 3
        assert Event.objects.filter(object_id=str(doomed.pk), message__contains="is OFF").count() == 1

        # Meanwhile the other host's changes still arrive at once.
        with closing(engines.connect(tls_engine)) as sdk:
            sdk.containers.get("worker").stop(timeout=1)
            try:
                wait_until(
                    lambda: _host(steady.pk).containers_running == 1, timeout=10, what="steady sees stop"
                )
            finally:
                sdk.containers.get("worker").start()
            wait_until(lambda: _host(steady.pk).containers_running == 2, timeout=10, what="steady sees start")
        assert _host(steady.pk).status == HostStatus.ON

        start_dockerd(workdir, info["name"])
        wait_until(lambda: _host(doomed.pk).status == HostStatus.ON, timeout=40, what="back ON")
        assert _host(doomed.pk).failures == 0
        assert Event.objects.filter(object_id=str(doomed.pk), message__contains="back ON").exists()


@pytest.mark.timeout(120)
def test_disabled_hosts_are_not_watched(project, private_engine, no_env_ca) -> None:
    _, info = private_engine
    host = trusted_host(info, project, "resting")
    Host.objects.filter(pk=host.pk).update(enabled=False, status=HostStatus.DISABLED)
    other = trusted_host(info, project, "awake")
    with running_watcher(interval=1.0):
        wait_until(lambda: _host(other.pk).status == HostStatus.ON, timeout=20, what="awake ON")
        assert _host(host.pk).status == HostStatus.DISABLED


def test_the_hosts_to_watch_are_read_in_one_query_however_many_there_are(project) -> None:
    """The watcher re-reads its hosts every two seconds: a field its trust needs but the query
    deferred cost two queries per host each time (10,000 hosts: 10,000 queries a second)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from hosts.fleet.watch import _targets
    from portal.watchers import Shard

    for i in range(5):
        Host.objects.create(
            project=project, name=f"h{i}", docker_url=f"ssh://root@10.0.0.{i}",
            ssh_host_key="ssh-ed25519 AAAAC3Nza", ssh_private_key=f"key-{i}",
        )  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        targets = _targets(Shard())
    assert len(queries.captured_queries) == 1, [q["sql"][:120] for q in queries.captured_queries]
    assert sorted(t.trust.ssh_private_key for t in targets.values()) == [f"key-{i}" for i in range(5)]
