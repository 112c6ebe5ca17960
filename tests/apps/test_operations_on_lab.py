"""A deployed application operated from its page on the lab's two engines, the way a person does
it: stop one service and see its containers exited, start it again, stop and start the whole
application, scale a service from 1 to 3 replicas over both hosts and back to 1 (issue 16,
"Applications: actions"). What the engines hold is read by Compose's labels; each step is
waited for on the engines, never for a fixed time."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from hosts.applications import catalog
from hosts.applications.engine_spec import NUMBER, SERVICE
from hosts.models import Application, Host, HostStatus
from portal.models import AuditEntry
from tests.apps.lab_apps import busybox_of, clean, deployed
from tests.hosts.conftest import trusted_host
from tests.lab import engines
from tests.lab.common import free_port, wait_until
from tests.lab.fixtures import start

pytestmark = pytest.mark.lab

GiB = 1024**3


def _pair(busybox: str) -> str:
    # A shell that leaves at once on SIGTERM (exit 0): a stop takes a second, not the 10 s grace.
    forever = "trap 'exit 0' TERM; while :; do sleep 1; done"
    return f"""\
services:
  web:
    image: {busybox}
    command: ["sh", "-c", "{forever}"]
    depends_on: [db]
    x-portal: {{spread: false}}
  db:
    image: {busybox}
    command: ["sh", "-c", "{forever}"]
"""


def _containers(info: dict[str, Any], project: str) -> dict[str, str]:
    """``{"web-1": "running", ...}``: the project's containers on one engine by Compose's labels."""
    sdk = engines.connect(info)
    try:
        found = sdk.api.containers(all=True, filters={"label": f"com.docker.compose.project={project}"})
        return {f"{c['Labels'][SERVICE]}-{c['Labels'][NUMBER]}": c["State"] for c in found}
    finally:
        sdk.close()


@pytest.mark.timeout(300)
def test_a_provisioner_stops_starts_and_scales_an_application_across_two_hosts(
    transactional_db, client, people, project, lab_engines, celery_worker_if_brokered
) -> None:
    plain = next(e for e in lab_engines if not e["tls"])
    tls = next(e for e in lab_engines if e["tls"])
    busybox = busybox_of(plain)
    hosts = {"photon-a": plain, "photon-b": tls}
    for name, info in hosts.items():
        host = trusted_host(info, project, name)
        # As the engines watcher leaves them, alike: the planner's choice then goes by name.
        Host.objects.filter(pk=host.pk).update(
            status=HostStatus.ON, memory=4 * GiB, cpus=2, containers_total=0
        )
    template = catalog.save(
        people["manager"], catalog.Draft(name="pair", source=_pair(busybox)), project=project
    ).template
    name = f"pair{free_port()}"
    client.force_login(people["provisioner"])
    client.post(reverse("hosts:app_deploy", args=[template.pk]), {"name": name, "step": "deploy"})
    application = Application.objects.get(name=name)
    page = reverse("hosts:app", args=[application.pk])

    def everywhere() -> dict[str, str]:
        """Every container of the application on both engines; a name on two engines would be a bug."""
        a, b = _containers(plain, name), _containers(tls, name)
        assert not set(a) & set(b), (a, b)
        return {**a, **b}

    def operate(action: str, service: str = "") -> None:
        answer = client.post(
            reverse("hosts:app_operate", args=[application.pk, action]),
            {"service": service} if service else {},
        )
        assert answer.status_code == 302 and answer["Location"] == page

    def scale(replicas: int) -> None:
        url = reverse("hosts:app_scale", args=[application.pk])
        assert client.post(url, {"service": "web", "replicas": str(replicas)})["Location"] == page

    try:
        deployed(application)
        assert application.state == "running", application.outcome
        assert everywhere() == {"web-1": "running", "db-1": "running"}
        assert 'id="app-services"' in client.get(page).content.decode()

        # One service stopped: its containers exited, the other's still running; then started again.
        operate("stop", "web")
        wait_until(
            lambda: everywhere() == {"web-1": "exited", "db-1": "running"}, timeout=60, what="web stopped"
        )
        operate("start", "web")
        wait_until(
            lambda: everywhere() == {"web-1": "running", "db-1": "running"}, timeout=60, what="web started"
        )

        # The whole application: web stops before db, db starts before web (dependencies first).
        operate("stop")
        wait_until(lambda: set(everywhere().values()) == {"exited"}, timeout=60, what="everything stopped")
        operate("start")
        wait_until(lambda: set(everywhere().values()) == {"running"}, timeout=60, what="everything started")

        # Scale web 1 -> 3: the new replicas numbered on, each where its placement says.
        scale(3)
        wanted = {"web-1": "running", "web-2": "running", "web-3": "running", "db-1": "running"}
        wait_until(lambda: everywhere() == wanted, timeout=120, what="web scaled to 3")
        placed = {
            f"web-{p.replica}": p.host.name
            for p in application.placements.filter(service="web").select_related("host")
        }
        assert sorted(placed) == ["web-1", "web-2", "web-3"]
        for replica, host_name in placed.items():
            assert replica in _containers(hosts[host_name], name), (replica, host_name)
        # Three replicas on two hosts: spread false let them share one; the planner used both.
        assert set(placed.values()) == {"photon-a", "photon-b"}

        # And back to 1: the highest numbers go, the placements with them.
        scale(1)
        wait_until(
            lambda: everywhere() == {"web-1": "running", "db-1": "running"},
            timeout=60,
            what="web scaled to 1",
        )
        assert [p.replica for p in application.placements.filter(service="web")] == [1]
        application.refresh_from_db()
        assert application.state == "running" and application.outcome == "", application.outcome
        actions = AuditEntry.objects.filter(actor=people["provisioner"], action__startswith="app.")
        assert sorted(set(actions.values_list("action", flat=True))) == [
            "app.deploy",
            "app.scale",
            "app.start",
            "app.stop",
        ]
    finally:
        clean(plain, name)
        clean(tls, name)


@pytest.fixture
def third_engine(tmp_path, lab_engines):  # type: ignore[no-untyped-def]
    """A third engine, this test's own: the session's lab has two."""
    workdir = tmp_path / "engines"
    (info,) = start(lambda: engines.up(workdir, plain=1, tls=0))
    yield info
    engines.down(workdir)


@pytest.mark.timeout(300)
def test_a_service_scaled_to_three_spreads_over_three_hosts_and_a_fourth_is_refused(
    transactional_db, client, people, project, lab_engines, third_engine, celery_worker_if_brokered
) -> None:
    infos = {
        "photon-a": next(e for e in lab_engines if not e["tls"]),
        "photon-b": next(e for e in lab_engines if e["tls"]),
        "photon-c": third_engine,
    }
    for host_name, info in infos.items():
        host = trusted_host(info, project, host_name)
        Host.objects.filter(pk=host.pk).update(
            status=HostStatus.ON, memory=4 * GiB, cpus=2, containers_total=0
        )
    source = f"services:\n  app:\n    image: {busybox_of(third_engine)}\n    command: [sleep, '3600']\n"
    template = catalog.save(
        people["manager"], catalog.Draft(name="spread", source=source), project=project
    ).template
    name = f"spread{free_port()}"
    client.force_login(people["provisioner"])
    client.post(reverse("hosts:app_deploy", args=[template.pk]), {"name": name, "step": "deploy"})
    application = Application.objects.get(name=name)
    url = reverse("hosts:app_scale", args=[application.pk])

    def per_engine() -> list[int]:
        return sorted(len(_containers(info, name)) for info in infos.values())

    try:
        assert deployed(application).state == "running", application.outcome
        client.post(url, {"service": "app", "replicas": "3"})
        # Anti-affinity (the default spread): one replica on each host.
        wait_until(lambda: per_engine() == [1, 1, 1], timeout=120, what="three replicas on three hosts")
        answer = client.post(url, {"service": "app", "replicas": "4"}, follow=True).content.decode()
        assert "The scale does not fit: app: 4 replicas to spread but only 3 hosts qualify" in answer
        assert per_engine() == [1, 1, 1] and application.placements.count() == 3
    finally:
        for info in infos.values():
            clean(info, name)
