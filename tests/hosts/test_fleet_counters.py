"""The fleet's counters (hosts by status per project) are stored, not counted per page: they must
match a fresh count after every way a host changes, and the repair must mend what bypasses them."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from hosts.fleet import counters, status
from hosts.models import Host, HostStatus, ProjectHostCounts
from portal.models import Project
from tests.hosts.watching import running_watcher
from tests.lab.common import wait_until

pytestmark = pytest.mark.django_db


def _fresh(project: Project) -> dict[str, int]:
    """Counted from the hosts themselves, the way the page did before the counters were stored."""
    hosts = list(Host.objects.filter(project=project))
    counted = {s.value: sum(1 for h in hosts if h.status == s) for s in HostStatus}
    return {"total": len(hosts), "running": sum(h.containers_running for h in hosts), **counted}


def _stored(project: Project) -> dict[str, Any]:
    row = ProjectHostCounts.objects.filter(project=project).values(*_fresh(project)).first()
    return row or {}


def _host(project: Project, name: str, **fields: Any) -> Host:
    return Host.objects.create(project=project, name=name, docker_url=f"tcp://{name}:2376", **fields)


def test_counters_follow_status_changes_and_deletes(project, other_project) -> None:
    a = _host(project, "a", status=HostStatus.ON, containers_running=3)
    b = _host(project, "b", status=HostStatus.ON, containers_running=2)
    c = _host(other_project, "c")
    assert _stored(project) == _fresh(project) == {**_fresh(project), "total": 2, "on": 2, "running": 5}

    # What the engines watcher does, on hosts read afresh as it reads them.
    status.record_failure(Host.objects.get(pk=a.pk), "no answer")
    assert _stored(project) == _fresh(project) and _stored(project)["suspect"] == 1
    for _ in range(status.OFF_AFTER):
        status.record_failure(Host.objects.get(pk=a.pk), "no answer")
    assert _stored(project) == _fresh(project) and _stored(project)["off"] == 1
    status.record_containers(Host.objects.get(pk=b.pk), running=7, total=9)
    assert _stored(project) == _fresh(project) and _stored(project)["running"] == 10
    status.record_success(Host.objects.get(pk=a.pk))
    assert _stored(project) == _fresh(project) and _stored(project)["on"] == 2

    Host.objects.get(pk=b.pk).delete()
    assert _stored(project) == _fresh(project) and _stored(project)["total"] == 1
    Host.objects.filter(project=project).delete()
    assert _stored(project) == _fresh(project) and _stored(project)["total"] == 0
    assert _stored(other_project) == _fresh(other_project) == {**_fresh(other_project), "unknown": 1}
    moved = Host.objects.get(pk=c.pk)
    moved.project = project
    moved.save()
    assert _stored(project) == _fresh(project) and _stored(project)["total"] == 1
    assert _stored(other_project) == _fresh(other_project) and _stored(other_project)["total"] == 0


def test_disabling_and_removing_a_host_on_its_page_moves_the_counters(client, people, project) -> None:
    host = _host(project, "a", status=HostStatus.ON)
    client.force_login(people["manager"])
    client.post(reverse("hosts:toggle", args=[host.pk]))
    assert _stored(project) == _fresh(project) and _stored(project)["disabled"] == 1
    client.post(reverse("hosts:remove", args=[host.pk]))
    assert not Host.objects.filter(pk=host.pk).exists()
    assert _stored(project) == _fresh(project) and _stored(project)["total"] == 0
    page = client.get(reverse("hosts:index")).content.decode()
    assert '<strong data-count="total">0</strong>' in page


def test_the_page_shows_a_status_change_at_once(client, people, project) -> None:
    host = _host(project, "a", status=HostStatus.ON)
    client.force_login(people["viewer"])
    assert '<strong data-count="on">1</strong>' in client.get(reverse("hosts:index")).content.decode()
    status.record_failure(Host.objects.get(pk=host.pk), "no answer")
    page = client.get(reverse("hosts:index")).content.decode()
    assert '<strong data-count="on">0</strong>' in page
    assert '<strong data-count="suspect">1</strong>' in page


def test_a_check_that_changes_nothing_counted_costs_no_recount(project) -> None:
    host = _host(project, "a", status=HostStatus.ON, containers_running=1)
    with CaptureQueriesContext(connection) as queries:
        status.record_success(Host.objects.get(pk=host.pk))  # last_seen moves, nothing counted does
    assert not [q for q in queries.captured_queries if "projecthostcounts" in q["sql"]]


def test_an_unchanged_host_is_written_once_a_minute_not_at_every_check(project) -> None:
    """10,000 hosts checked every 15 s rewrote 667 rows a second that said nothing new."""
    from datetime import timedelta

    from django.utils import timezone

    from hosts.fleet.engine import Facts

    facts = Facts(engine_version="24.0.9", os_name="Photon", containers_running=1, containers_total=2)
    host = _host(project, "a", status=HostStatus.ON)
    status.record_success(Host.objects.get(pk=host.pk), facts)
    seen = Host.objects.get(pk=host.pk).last_seen

    with CaptureQueriesContext(connection) as queries:
        assert status.record_success(Host.objects.get(pk=host.pk), facts) is False
    assert len(queries.captured_queries) == 1, "only the read of the host: nothing written"
    assert Host.objects.get(pk=host.pk).last_seen == seen

    # A minute on, the same answer moves last_seen; a new fact is written at once.
    Host.objects.filter(pk=host.pk).update(last_seen=seen - status.LAST_SEEN_EVERY)
    status.record_success(Host.objects.get(pk=host.pk), facts)
    assert Host.objects.get(pk=host.pk).last_seen > seen - timedelta(seconds=1)
    busier = Facts(engine_version="24.0.9", os_name="Photon", containers_running=2, containers_total=2)
    assert status.record_success(Host.objects.get(pk=host.pk), busier) is True
    assert Host.objects.get(pk=host.pk).containers_running == 2
    assert timezone.now() - Host.objects.get(pk=host.pk).last_seen < timedelta(seconds=5)


def test_an_off_host_says_it_is_back_whichever_path_sees_it_first(project) -> None:
    """A restarted engine's event stream often reports a container before the next check does;
    that path set the host ON without the "back ON" event (and the check then saw it ON already)."""
    from portal.models import Event

    for back in (
        lambda h: status.record_containers(h, running=1, total=1),
        lambda h: status.record_success(h),
    ):
        host = _host(project, f"h{Host.objects.count()}", status=HostStatus.ON)
        for _ in range(status.OFF_AFTER):
            status.record_failure(Host.objects.get(pk=host.pk), "no answer")
        assert Event.objects.filter(object_id=str(host.pk), message__contains="is OFF").count() == 1
        back(Host.objects.get(pk=host.pk))
        assert Host.objects.get(pk=host.pk).status == HostStatus.ON
        assert Event.objects.filter(object_id=str(host.pk), message__contains="back ON").count() == 1
        status.record_containers(Host.objects.get(pk=host.pk), running=2, total=2)
        assert Event.objects.filter(object_id=str(host.pk), message__contains="back ON").count() == 1


def test_repair_mends_what_sends_no_signal(project, other_project) -> None:
    _host(project, "a", status=HostStatus.ON)
    Host.objects.bulk_create(
        [Host(project=project, name=f"bulk-{i}", docker_url=f"tcp://b{i}:2376") for i in range(3)]
    )
    Host.objects.filter(project=project, name="a").update(status=HostStatus.OFF, containers_running=4)
    assert _stored(project) != _fresh(project)
    assert counters.repair() == 2  # this project's counters, and the other's that were never made
    assert _stored(project) == _fresh(project) == {**_fresh(project), "total": 4, "off": 1, "unknown": 3}
    assert _stored(other_project) == _fresh(other_project)
    assert counters.repair() == 0


def test_a_project_never_counted_is_counted_when_read(client, people, project) -> None:
    Host.objects.bulk_create(
        [Host(project=project, name=f"bulk-{i}", docker_url=f"tcp://b{i}:2376") for i in range(3)]
    )
    ProjectHostCounts.objects.all().delete()
    client.force_login(people["viewer"])
    page = client.get(reverse("hosts:index")).content.decode()
    assert '<strong data-count="unknown">3</strong>' in page
    assert _stored(project) == _fresh(project)


@pytest.mark.django_db(transaction=True)
def test_the_engines_watcher_repairs_the_counters(project) -> None:
    # Disabled: counted, but not checked (no engine answers here).
    Host.objects.bulk_create(
        [
            Host(project=project, name=f"bulk-{i}", docker_url=f"tcp://b{i}:2376", enabled=False)
            for i in range(3)
        ]
    )
    assert _stored(project) != _fresh(project)
    with running_watcher(interval=60.0):
        wait_until(lambda: _stored(project) == _fresh(project), timeout=20, what="counters repaired")
    assert _stored(project)["total"] == 3
