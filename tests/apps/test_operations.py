"""Operating a deployed application (issue 16, "Applications: actions"): stop, start, restart it
or one service, and scale a service. The rules, the audit and what is queued, through the pages
(no engine asked: the queue is caught, the engines' view is empty); the order the engine layer
takes, on fake engines; the planner counting the replicas already placed. The lab test runs them
for real: tests/apps/test_operations_on_lab.py."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse

from hosts.applications import engine_actions, engine_view, operation_tasks, operations, placement
from hosts.applications.engine_spec import NUMBER, PROJECT, SERVICE
from hosts.models import Application, ApplicationPlacement, Host, HostStatus
from portal.models import AuditEntry, Role
from portal.refused import Refused

GiB = 1024**3
SHOP = """\
services:
  web:
    image: lab/busybox:1.35
    depends_on: [db]
  db:
    image: lab/busybox:1.35
    deploy: {resources: {reservations: {memory: 1g}}}
  solo:
    image: lab/busybox:1.35
    container_name: the-solo
"""


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """What the operations queue, instead of sending it (no worker, no engine here)."""
    calls: list[tuple[str, tuple[Any, ...]]] = []
    monkeypatch.setattr(operation_tasks, "enqueue", lambda task, *args: calls.append((task.name, args)))
    monkeypatch.setattr(engine_view, "read", lambda application: engine_view.EngineView())
    return calls


def _host(project: Any, name: str, memory: int = 8 * GiB) -> Host:
    return Host.objects.create(
        project=project,
        name=name,
        docker_url=f"tcp://{name}:2376",
        status=HostStatus.ON,
        memory=memory,
        cpus=4,
    )


def _app(project: Any, state: str = Application.State.RUNNING, **replicas: list[Host]) -> Application:
    application = Application.objects.create(project=project, name="shop", source=SHOP, state=state)
    for service, hosts in replicas.items():
        for number, host in enumerate(hosts, 1):
            # db reserves 1 GiB a replica (as SHOP says), counted against its host by later plans.
            memory = GiB if service == "db" else 0
            ApplicationPlacement.objects.create(
                application=application,
                service=service,
                replica=number,
                host=host,
                memory=memory,
                reason="placed",
            )
    return application


def _operate(client: Any, application: Application, action: str, service: str = "") -> Any:
    url = reverse("hosts:app_operate", args=[application.pk, action])
    return client.post(url, {"service": service} if service else {}, follow=True)


def _scale(client: Any, application: Application, service: str, replicas: str) -> Any:
    url = reverse("hosts:app_scale", args=[application.pk])
    return client.post(url, {"service": service, "replicas": replicas}, follow=True)


def _placed(application: Application, service: str) -> list[tuple[int, str]]:
    rows = application.placements.filter(service=service).select_related("host").order_by("replica")
    return [(p.replica, p.host.name) for p in rows]


# -- who may ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_viewer_is_refused_and_another_projects_admin_sees_nothing(
    client, people, project, other_project, make_user, queued
) -> None:
    application = _app(project, web=[_host(project, "photon-1")])
    client.force_login(people["viewer"])
    assert _operate(client, application, "stop").status_code == 403
    assert _scale(client, application, "web", "2").status_code == 403
    # The page shows a viewer no button to press.
    page = client.get(reverse("hosts:app", args=[application.pk])).content.decode()
    assert 'id="app-stop"' not in page and 'id="app-services"' not in page
    client.force_login(make_user("stranger", project=other_project, role=Role.PROJECT_ADMIN))
    assert _operate(client, application, "stop").status_code == 404
    assert _scale(client, application, "web", "2").status_code == 404
    client.force_login(people["provisioner"])
    assert client.get(reverse("hosts:app_operate", args=[application.pk, "stop"])).status_code == 405
    assert _operate(client, application, "explode").status_code == 404
    assert queued == [] and not AuditEntry.objects.filter(action__in=["app.stop", "app.scale"]).exists()
    assert _placed(application, "web") == [(1, "photon-1")]


# -- stop, start, restart -------------------------------------------------------------------------


@pytest.mark.django_db
def test_stop_start_and_restart_are_audited_and_queued_with_their_buttons_on_the_page(
    client, people, project, queued
) -> None:
    host = _host(project, "photon-1")
    application = _app(project, web=[host], db=[host])
    client.force_login(people["provisioner"])
    page = client.get(reverse("hosts:app", args=[application.pk])).content.decode()
    assert 'id="app-stop"' in page and 'id="app-start"' in page and 'id="app-restart"' in page
    assert 'data-confirm="Stop every container of shop?' in page
    services = page[page.index('id="app-services"') : page.index('id="app-placements"')]
    assert 'data-service="web"' in services and 'data-service="db"' in services
    assert 'name="replicas"' in services and 'max="20"' in services

    answer = _operate(client, application, "stop")
    assert "Stop of shop queued" in answer.content.decode()
    _operate(client, application, "restart", "web")
    _operate(client, application, "start", "db")
    assert queued == [
        ("hosts.operate_application", (application.pk, "stop", "")),
        ("hosts.operate_application", (application.pk, "restart", "web")),
        ("hosts.operate_application", (application.pk, "start", "db")),
    ]
    entries = AuditEntry.objects.filter(action__startswith="app.").order_by("pk")
    assert [(e.action, e.after["service"], e.actor) for e in entries] == [
        ("app.stop", "every service", people["provisioner"]),
        ("app.restart", "web", people["provisioner"]),
        ("app.start", "db", people["provisioner"]),
    ]


@pytest.mark.django_db
def test_an_application_being_deployed_or_gone_is_not_operated(client, people, project, queued) -> None:
    host = _host(project, "photon-1")
    application = _app(project, Application.State.DEPLOYING, web=[host])
    client.force_login(people["provisioner"])
    page = _operate(client, application, "stop").content.decode()
    assert "shop is still being deployed; stop it when the deploy has ended." in page
    assert 'id="app-stop"' not in page  # nor offered
    for state, words in (
        (Application.State.QUEUED, "still being deployed"),
        (Application.State.REMOVED, "shop is removed: it has nothing left to restart."),
        (Application.State.ROLLED_BACK, "deploy was rolled back"),
    ):
        Application.objects.filter(pk=application.pk).update(state=state)
        application.refresh_from_db()
        with pytest.raises(Refused, match=words):
            operations.request_action(people["provisioner"], application, "restart")
        with pytest.raises(Refused, match=words.replace("restart", "scale")):
            operations.request_scale(people["provisioner"], application, "web", 2)
    # A failed deploy's containers may be stopped and started, not scaled.
    Application.objects.filter(pk=application.pk).update(state=Application.State.FAILED)
    application.refresh_from_db()
    with pytest.raises(Refused, match="deploy failed: roll it back or remove it"):
        operations.request_scale(people["provisioner"], application, "web", 2)
    operations.request_action(people["provisioner"], application, "stop", "web")
    with pytest.raises(Refused, match="has no service 'cache'"):
        operations.request_action(people["provisioner"], application, "stop", "cache")
    assert queued == [("hosts.operate_application", (application.pk, "stop", "web"))]


# -- scale ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_scale_out_of_range_or_meaningless_is_refused(client, people, project, queued) -> None:
    host = _host(project, "photon-1")
    application = _app(project, web=[host], solo=[host])
    client.force_login(people["provisioner"])
    for given in ("0", "21", "-1", "two", ""):
        page = _scale(client, application, "web", given).content.decode()
        assert "A service runs 1 to 20 replicas" in page, given
    assert (
        "shop has no service &#x27;cache&#x27;." in _scale(client, application, "cache", "2").content.decode()
    )
    assert "web runs 1 replica already." in _scale(client, application, "web", "1").content.decode()
    page = _scale(client, application, "solo", "2").content.decode()
    assert "solo has a fixed container_name (the-solo): it runs one replica only." in page
    assert queued == [] and not AuditEntry.objects.filter(action="app.scale").exists()
    assert _placed(application, "web") == [(1, "photon-1")]


@pytest.mark.django_db
def test_a_scale_that_cannot_fit_names_the_rule_and_starts_nothing(client, people, project, queued) -> None:
    one, two = _host(project, "photon-1"), _host(project, "photon-2", memory=1 * GiB)
    application = _app(project, web=[one], db=[one])
    client.force_login(people["provisioner"])
    # web spreads (the default): a third replica has no host left without one.
    page = _scale(client, application, "web", "3").content.decode()
    assert "The scale does not fit: web: 3 replicas to spread but only 2 hosts qualify" in page
    assert "x-portal spread: false lets replicas share a host" in page
    # db reserves 1 GiB a replica: photon-1 has 7 GiB left and runs it, photon-2 takes one, and no more.
    page = _scale(client, application, "db", "9").content.decode()
    assert "The scale does not fit: db: 9 replicas to spread but only 2 hosts qualify" in page
    Host.objects.filter(pk=two.pk).update(memory=GiB // 2)
    page = _scale(client, application, "db", "2").content.decode()
    assert "The scale does not fit: db: needs 1.0 GiB, the most free on a qualifying host is 512 MiB" in page
    assert queued == [] and not AuditEntry.objects.filter(action="app.scale").exists()
    assert _placed(application, "web") == [(1, "photon-1")] and _placed(application, "db") == [
        (1, "photon-1")
    ]


@pytest.mark.django_db
def test_scaling_up_places_only_the_new_replicas_numbered_on_and_down_forgets_the_highest(
    client, people, project, queued
) -> None:
    one, two, three = (_host(project, f"photon-{n}") for n in (1, 2, 3))
    application = _app(project, web=[two], db=[one])
    client.force_login(people["provisioner"])
    page = _scale(client, application, "web", "3").content.decode()
    assert "Scaling web to 3: its progress is below." in page
    # Spread: the new replicas go where web is not yet; photon-1's db reserves 1 GiB, so it is last.
    assert _placed(application, "web") == [(1, "photon-2"), (2, "photon-3"), (3, "photon-1")]
    assert "not yet running web" in application.placements.get(service="web", replica=2).reason
    assert queued == [("hosts.add_replicas", (application.pk, "web", [2, 3]))]
    entry = AuditEntry.objects.get(action="app.scale")
    assert entry.actor == people["provisioner"]
    assert entry.after == {
        "service": "web",
        "from": 1,
        "to": 3,
        "added": ["web-2 on photon-3", "web-3 on photon-1"],
    }

    queued.clear()
    _scale(client, application, "web", "1")
    assert _placed(application, "web") == [(1, "photon-2")]
    removed = queued[0][1][2]
    assert queued[0][:1] == ("hosts.remove_replicas",) and queued[0][1][:2] == (application.pk, "web")
    assert [(r["replica"], r["host_id"]) for r in removed] == [(2, three.pk), (3, one.pk)]
    last = AuditEntry.objects.filter(action="app.scale").latest("pk")
    assert last.after == {
        "service": "web",
        "from": 3,
        "to": 1,
        "removed": ["web-2 on photon-3", "web-3 on photon-1"],
    }
    # Scaling up again takes the numbers after the highest still placed.
    queued.clear()
    _scale(client, application, "web", "2")
    assert [n for n, _ in _placed(application, "web")] == [1, 2]
    assert queued == [("hosts.add_replicas", (application.pk, "web", [2]))]


@pytest.mark.django_db
def test_a_scale_whose_engine_is_down_leaves_the_placements_as_the_engines_are(
    project, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = _host(project, "photon-1"), _host(project, "photon-2")
    application = _app(project, web=[one, two])

    @contextlib.contextmanager
    def down(hosts: Any) -> Iterator[dict[int, Any]]:
        raise RuntimeError("connection refused")
        yield {}

    monkeypatch.setattr(operation_tasks, "_clients", down)
    # Scaled down to 1, then replica 2's container cannot be removed: its placement comes back.
    application.placements.filter(replica=2).delete()
    operation_tasks.remove_replicas(
        application.pk, "web", [{"replica": 2, "host_id": two.pk, "memory": 0, "cpus": 0.0}]
    )
    kept = application.placements.get(service="web", replica=2)
    assert kept.host == two and kept.reason == operation_tasks.KEPT
    application.refresh_from_db()
    assert application.outcome == f"Scaling web down left: web replica 2 on host {two.pk}: connection refused"
    assert application.state == Application.State.RUNNING
    # Scaled up to 3, then the engine cannot be reached: the added placement is forgotten.
    ApplicationPlacement.objects.create(application=application, service="web", replica=3, host=one)
    operation_tasks.add_replicas(application.pk, "web", [3])
    assert _placed(application, "web") == [(1, "photon-1"), (2, "photon-2")]
    application.refresh_from_db()
    assert application.outcome.startswith("Scaling web up failed, the added replicas are removed:")


def test_the_planner_counts_the_replicas_already_placed() -> None:
    pool = [
        placement.Candidate(id=n, name=f"photon-{n}", on=True, tags=frozenset(), memory_free=GiB, cpus_free=2,
                            containers=0)
        for n in (1, 2)
    ]  # fmt: skip
    capped = placement.Need("web", replicas=5, spread=False, max_per_host=2)
    plan = placement.plan([capped], pool, existing={"web": {1: 2, 2: 1}})
    assert plan.failure == (
        "web: replica 5 of 5 would exceed max_per_host 2 on every qualifying host (photon-1, photon-2)"
    )
    plan = placement.plan([placement.Need("web", replicas=4, spread=False, max_per_host=2)], pool,
                          existing={"web": {1: 2, 2: 1}})  # fmt: skip
    assert [(p.replica, p.host) for p in plan.placements] == [(4, "photon-2")]
    # Nothing running: as a deploy plans.
    fresh = placement.plan([placement.Need("web", replicas=2)], pool, existing={})
    assert [(p.replica, p.host) for p in fresh.placements] == [(1, "photon-1"), (2, "photon-2")]


# -- the engine layer, on fake engines --------------------------------------------------------------


class _Api:
    """What engine_actions asks of an engine, over a list of containers (their labels and state)."""

    def __init__(self, host_id: int, log: list[str], containers: list[dict[str, Any]]) -> None:
        self.host_id, self.log, self.items = host_id, log, containers

    def containers(self, all: bool, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        wanted = dict(f.split("=", 1) for f in filters["label"])
        return [c for c in self.items if wanted.items() <= c["Labels"].items()]

    def _do(self, action: str, cid: str, state: str) -> None:
        item = next(c for c in self.items if c["Id"] == cid)
        if item["Names"][0] == "/shop-web-1" and action == "restart":
            raise RuntimeError("the engine said no")
        self.log.append(f"{action} {item['Names'][0][1:]}")
        item["State"] = state

    def stop(self, cid: str) -> None:
        self._do("stop", cid, "exited")

    def start(self, cid: str) -> None:
        self._do("start", cid, "running")

    def restart(self, cid: str) -> None:
        self._do("restart", cid, "running")

    def inspect_container(self, cid: str) -> dict[str, Any]:
        item = next(c for c in self.items if c["Id"] == cid)
        health = {"Status": item["Health"], "Log": [{"Output": "no answer"}]} if "Health" in item else {}
        return {"State": {"Status": item["State"], "Health": health, "ExitCode": 0}}

    def remove_container(self, cid: str, force: bool) -> None:
        self._do("remove", cid, "gone")
        self.items = [c for c in self.items if c["Id"] != cid]


class _Sdk:
    def __init__(self, api: _Api) -> None:
        self.api = api


def _engines(log: list[str]) -> dict[int, Any]:
    def c(host: int, service: str, n: int, state: str = "running") -> dict[str, Any]:
        labels = {PROJECT: "shop", SERVICE: service, NUMBER: str(n)}
        return {"Id": f"{service}{n}", "Names": [f"/shop-{service}-{n}"], "Labels": labels, "State": state}

    other = {
        "Id": "x",
        "Names": ["/other-web-1"],
        "Labels": {PROJECT: "other", SERVICE: "web"},
        "State": "running",
    }
    return {
        1: _Sdk(_Api(1, log, [c(1, "db", 1), c(1, "web", 2), other])),
        2: _Sdk(_Api(2, log, [c(2, "web", 1, "exited"), c(2, "api", 1)])),
    }


MODEL = {
    "services": {
        "web": {"image": "x", "depends_on": ["api"]},
        "api": {"image": "x", "depends_on": {"db": {"condition": "service_started"}}},
        "db": {"image": "x"},
    }
}


def test_stop_goes_in_reverse_dependency_order_and_start_dependencies_first() -> None:
    log: list[str] = []
    clients, said = _engines(log), []
    assert engine_actions.operate("shop", MODEL, "stop", clients, said.append) == []
    # web-1 was exited already: told, not stopped again; another project's container is not touched.
    assert log == ["stop shop-web-2", "stop shop-api-1", "stop shop-db-1"]
    assert any(p.message == "shop-web-1 was not running" for p in said)
    log.clear()
    assert engine_actions.operate("shop", MODEL, "start", clients, said.append) == []
    assert log == ["start shop-db-1", "start shop-api-1", "start shop-web-1", "start shop-web-2"]
    log.clear()
    assert engine_actions.operate("shop", MODEL, "stop", clients, said.append, service="web") == []
    assert log == ["stop shop-web-1", "stop shop-web-2"]


def test_a_container_the_engine_refuses_is_reported_and_the_others_still_done() -> None:
    log: list[str] = []
    said: list[Any] = []
    problems = engine_actions.operate("shop", MODEL, "restart", _engines(log), said.append)
    assert problems == ["shop-web-1 on host 2: the engine said no"]
    assert log == ["restart shop-db-1", "restart shop-api-1", "restart shop-web-2"]
    assert [p.level for p in said if p.step == "Failed"] == ["error"]


def test_removing_replicas_takes_the_highest_first_and_says_what_was_gone() -> None:
    log: list[str] = []
    clients, said = _engines(log), []
    problems = engine_actions.remove_replicas(
        "shop", "web", [(1, 2), (2, 1), (3, 1), (4, 9)], clients, said.append
    )
    assert problems == {4: "web replica 4 on host 9: no client for that host"}
    assert log == ["stop shop-web-2", "remove shop-web-2", "remove shop-web-1"]
    assert "web replica 3 is not there: gone already" in [p.message for p in said]
    assert [c["Names"][0] for c in clients[1].api.items] == ["/shop-db-1", "/other-web-1"]


def test_starting_the_whole_application_waits_for_a_dependency_that_must_be_healthy() -> None:
    log: list[str] = []
    clients, said = _engines(log), []
    model = {
        "services": {
            **MODEL["services"],
            "api": {"image": "x", "depends_on": {"db": {"condition": "service_healthy"}}},
        }
    }
    db = clients[1].api.items[0]
    db["Health"] = "healthy"
    assert engine_actions.operate("shop", model, "start", clients, said.append) == []
    assert "shop-db-1 is healthy" in [p.message for p in said]
    assert log == ["start shop-web-1"]  # the others ran already
    # An unhealthy dependency: what waits for it is not started, nor what depends on that; each says why.
    for sdk in clients.values():
        for c in sdk.api.items:
            c["State"] = "exited"
    db["Health"] = "unhealthy"
    log.clear()
    problems = engine_actions.operate("shop", model, "start", clients, said.append)
    assert problems == [
        "db on host 1: api waits for it to be healthy, but it is unhealthy (no answer)",
        "web depends on api, which did not start",
    ]
    assert log == ["start shop-db-1"]
    # One service alone starts without waiting, as `docker compose start api` does.
    log.clear()
    assert engine_actions.operate("shop", model, "start", clients, said.append, service="api") == []
    assert log == ["start shop-api-1"]
