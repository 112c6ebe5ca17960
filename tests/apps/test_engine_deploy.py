"""Deploying a Compose application across engines: the translation of a service into the engine's
config (no engine needed), then real deploys on the lab's two dockerd engines.

The lab's engines: host 1 is the plain engine, host 2 the TLS one. Both run on this machine, so a
port published on one is taken for the other too; each test uses its own project name (a uuid)
and removes everything of it in ``finally``.
"""

from __future__ import annotations

import socket
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from hosts.applications import engine_deploy as ed
from hosts.applications import engine_spec as spec
from tests.lab import engines
from tests.lab.common import free_port, wait_until

SECOND = 10**9

# -- the translation ---------------------------------------------------------------------------


def test_durations_ports_and_pairs_read_as_compose_reads_them() -> None:
    assert spec.parse_duration("1m30s") == 90 * SECOND
    assert spec.parse_duration("100ms") == SECOND // 10
    assert spec.parse_duration(5) == 5 * SECOND
    with pytest.raises(ValueError, match="expected a number and a unit"):
        spec.parse_duration("5 parsecs")
    assert spec.parse_ports(
        ["8080:80", "127.0.0.1:8081:81/udp", "82", "[::1]:8083:83", "9000-9001:90-91"]
    ) == [
        ("80/tcp", "", "8080"),
        ("81/udp", "127.0.0.1", "8081"),
        ("82/tcp", "", ""),
        ("83/tcp", "::1", "8083"),
        ("90/tcp", "", "9000"),
        ("91/tcp", "", "9001"),
    ]
    long_form = {"target": 80, "published": "8443", "host_ip": "0.0.0.0", "protocol": "tcp"}
    assert spec.parse_ports([long_form]) == [("80/tcp", "0.0.0.0", "8443")]
    assert spec.pairs(["A=1", "B", "C="], bare=None) == {"A": "1", "C": ""}
    assert spec.pairs({"A": 1, "B": None, "C": True}, bare=None) == {"A": "1", "C": "true"}
    assert spec.pairs(["tier=web", "flag"], bare="") == {"tier": "web", "flag": ""}


def test_a_service_becomes_the_engines_config_with_composes_labels() -> None:
    model: dict[str, Any] = {
        "services": {
            "api": {
                "image": "lab/busybox:1.35",
                "command": "sh -c 'echo hi; sleep 1'",
                "entrypoint": ["/bin/env"],
                "environment": {"A": "1", "SKIP": None},
                "ports": ["127.0.0.1:8080:80"],
                "expose": ["9000"],
                "volumes": ["data:/data:ro", {"type": "tmpfs", "target": "/run", "tmpfs": {"size": "64m"}}],
                "networks": {"back": {"aliases": ["api.internal"]}, "default": None},
                "depends_on": {"db": {"condition": "service_healthy"}},
                "healthcheck": {"test": "true", "interval": "5s", "retries": 3, "start_period": "1m"},
                "restart": "on-failure:3",
                "deploy": {"resources": {"limits": {"cpus": "0.5", "memory": "512m"}}},
                "stop_grace_period": "30s",
                "labels": {"tier": "api"},
                "x-portal": {"spread": False},
            },
            "db": {"image": "lab/busybox:1.35"},
        },
        "networks": {"back": {"name": "shared-back"}},
        "volumes": {"data": {}},
    }
    plan = spec.plan("shop", model, "api", 2, 7)
    config, host = plan.config, plan.config["HostConfig"]
    assert plan.name == "shop-api-2" and plan.host_id == 7 and plan.volumes == ["data"]
    assert plan.networks == [
        ("back", "shared-back", ["api", "api.internal"]),
        ("default", "shop_default", ["api"]),
    ]
    assert config["Cmd"] == ["sh", "-c", "echo hi; sleep 1"] and config["Entrypoint"] == ["/bin/env"]
    assert config["Env"] == ["A=1"]
    assert config["ExposedPorts"] == {"9000/tcp": {}, "80/tcp": {}}
    assert config["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"], "Interval": 5 * SECOND, "Retries": 3, "StartPeriod": 60 * SECOND
    }  # fmt: skip
    assert config["StopTimeout"] == 30
    assert config["NetworkingConfig"] == {
        "EndpointsConfig": {"shared-back": {"Aliases": ["api", "api.internal"]}}
    }
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
    assert host["Mounts"] == [
        {"Type": "volume", "Target": "/data", "ReadOnly": True, "Source": "shop_data"},
        {"Type": "tmpfs", "Target": "/run", "TmpfsOptions": {"SizeBytes": 64 * 2**20}},
    ]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["NanoCpus"] == SECOND // 2 and host["Memory"] == 512 * 2**20
    labels = config["Labels"]
    assert labels["com.docker.compose.project"] == "shop" and labels["io.photon-portal.application"] == "shop"
    assert labels["com.docker.compose.container-number"] == "2" and labels["tier"] == "api"
    assert labels["com.docker.compose.depends_on"] == "db:service_healthy:false"
    assert labels["com.docker.compose.config-hash"] == spec.config_hash(model["services"]["api"])
    assert spec.order(model) == ["db", "api"]


def test_what_the_deployer_cannot_honour_is_refused_not_dropped() -> None:
    base: dict[str, Any] = {"image": "lab/busybox:1.35"}
    cases = [
        ({**base, "ulimits": {"nofile": 10}}, "not supported by the portal's deployer: ulimits"),
        ({**base, "volumes": ["/etc:/host-etc"]}, "not host paths"),
        ({**base, "volumes": ["undeclared:/x"]}, "not declared under the top-level volumes"),
        ({**base, "networks": ["nowhere"]}, "not declared under the top-level networks"),
    ]
    for service, words in cases:
        with pytest.raises(ValueError, match=words):
            spec.plan("p", {"services": {"s": service}}, "s", 1, 1)
    assert spec.object_name("p", "ext", {"external": True}) == ("ext", True)
    assert spec.object_name("p", "data", {"name": "fixed"}) == ("fixed", False)
    assert spec.object_name("p", "data", None) == ("p_data", False)


def test_roll_back_reports_what_it_cannot_reach_and_goes_on() -> None:
    events: list[ed.Progress] = []
    created = ed.Created(
        [ed.CreatedObject("network", 9, "p_default", "id9"), ed.CreatedObject("volume", 9, "v", "v")]
    )
    assert ed.roll_back(created, {}, events.append) == [
        "network p_default on host 9: no client for that host"
    ]
    assert [(e.step, e.level) for e in events] == [("Rolling back", "info"), ("Failed", "error")]


# -- the lab -----------------------------------------------------------------------------------


@pytest.fixture
def clients(lab_engines: list[dict[str, Any]]) -> Iterator[dict[int, Any]]:
    """Host 1: the plain engine; host 2: the TLS one (two engines, so placement spans both)."""
    plain = next(e for e in lab_engines if not e["tls"])
    tls = next(e for e in lab_engines if e["tls"])
    opened = {1: engines.connect(plain), 2: engines.connect(tls)}
    yield opened
    for sdk in opened.values():
        sdk.close()


@pytest.fixture
def busybox(lab_engines: list[dict[str, Any]]) -> str:
    return next(ref for ref in lab_engines[0]["images"] if ref.startswith("lab/busybox:"))


def _project() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def _shop(busybox: str, port: int) -> dict[str, Any]:
    """web -> app -> db (healthy); declared in the wrong order on purpose."""
    return {
        "services": {
            "web": {
                "image": busybox,
                "command": [
                    "sh",
                    "-c",
                    "echo hello-from-web > /tmp/index.html && exec httpd -f -p 80 -h /tmp",
                ],
                "ports": [f"127.0.0.1:{port}:80"],
                "depends_on": ["app"],
                "networks": {"default": None, "front": {"aliases": ["www"]}},
                "environment": {"GREETING": "hi", "UNSET": None},
                "labels": ["tier=front"],
            },
            "app": {
                "image": busybox,
                "command": "sleep 3600",
                "depends_on": {"db": {"condition": "service_healthy"}},
            },
            "db": {
                "image": busybox,
                "command": ["sh", "-c", "touch /tmp/ok; sleep 3600"],
                "healthcheck": {"test": ["CMD", "test", "-f", "/tmp/ok"], "interval": "1s", "retries": 30},
                "volumes": ["data:/data"],
            },
        },
        "networks": {"front": {}},
        "volumes": {"data": {}},
    }


def _labelled(sdk: Any, project: str) -> dict[str, list[str]]:
    """Names of the project's containers, networks and volumes on one engine."""
    label = {"label": f"com.docker.compose.project={project}"}
    return {
        "containers": sorted(c["Names"][0].lstrip("/") for c in sdk.api.containers(all=True, filters=label)),
        "networks": sorted(n["Name"] for n in sdk.api.networks(filters=label)),
        "volumes": sorted(v["Name"] for v in sdk.api.volumes(filters=label).get("Volumes") or []),
    }


def _index(events: list[ed.Progress], step: str, service: str) -> list[int]:
    return [i for i, e in enumerate(events) if e.step == step and e.service == service]


@pytest.mark.lab
@pytest.mark.timeout(240)
def test_an_application_spans_two_engines_in_dependency_order(clients, busybox) -> None:
    project, port = _project(), free_port()
    model = _shop(busybox, port)
    placements = [("db", 1, 1), ("app", 1, 2), ("app", 2, 1), ("web", 1, 2)]
    events: list[ed.Progress] = []
    logins: list[tuple[int, str]] = []
    try:
        created = ed.deploy(
            project, model, placements, clients, events.append, login=lambda h, i: logins.append((h, i))
        )
        assert logins == []  # both engines hold the image: nothing pulled, no login asked
        # Only what each host's containers use: the volume where db runs, "front" where web runs.
        assert _labelled(clients[1], project) == {
            "containers": [f"{project}-app-2", f"{project}-db-1"],
            "networks": [f"{project}_default"],
            "volumes": [f"{project}_data"],
        }
        assert _labelled(clients[2], project) == {
            "containers": [f"{project}-app-1", f"{project}-web-1"],
            "networks": [f"{project}_default", f"{project}_front"],
            "volumes": [],
        }
        assert [(o.kind, o.host_id) for o in created.objects] == [
            ("network", 1), ("volume", 1), ("network", 2), ("network", 2),
            ("container", 1), ("container", 2), ("container", 1), ("container", 2),
        ]  # fmt: skip
        # db healthy (on host 1) before any app starts (on either host), app before web.
        db_healthy = _index(events, "Healthy", "db")
        assert db_healthy and max(_index(events, "Starting", "db")) < min(db_healthy)
        assert max(db_healthy) < min(_index(events, "Starting", "app"))
        assert max(_index(events, "Starting", "app")) < min(_index(events, "Starting", "web"))
        assert all(e.level == "info" for e in events)

        web = clients[2].api.inspect_container(f"{project}-web-1")
        labels = web["Config"]["Labels"]
        assert labels["com.docker.compose.project"] == project
        assert labels["com.docker.compose.service"] == "web"
        assert labels["com.docker.compose.container-number"] == "1"
        assert labels["com.docker.compose.oneoff"] == "False"
        assert labels["com.docker.compose.depends_on"] == "app:service_started:false"
        assert labels["io.photon-portal.application"] == project and labels["tier"] == "front"
        assert "com.docker.compose.config-hash" in labels and "com.docker.compose.version" in labels
        assert "GREETING=hi" in web["Config"]["Env"] and not any(
            e.startswith("UNSET") for e in web["Config"]["Env"]
        )
        aliases = web["NetworkSettings"]["Networks"][f"{project}_front"]["Aliases"]
        assert {"web", "www"} <= set(aliases)
        app = clients[1].api.inspect_container(f"{project}-app-2")["Config"]["Labels"]
        assert app["com.docker.compose.depends_on"] == "db:service_healthy:false"
        network = clients[2].api.inspect_network(f"{project}_front")["Labels"]
        assert (
            network["com.docker.compose.project"] == project
            and network["com.docker.compose.network"] == "front"
        )
        volume = clients[1].api.inspect_volume(f"{project}_data")["Labels"]
        assert (
            volume["com.docker.compose.project"] == project and volume["com.docker.compose.volume"] == "data"
        )

        def page() -> bytes:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as answer:
                return bytes(answer.read())

        wait_until(lambda: b"hello-from-web" in page(), timeout=30, what=f"web's page on port {port}")

        states = ed.status(project, clients)
        assert [(s.service, s.replica, s.host_id, s.state) for s in states] == [
            ("app", 1, 2, "running"), ("app", 2, 1, "running"),
            ("db", 1, 1, "running"), ("web", 1, 2, "running"),
        ]  # fmt: skip
        assert states[2].health == "healthy" and states[0].health == ""
        assert states[3].ports == (f"127.0.0.1:{port}->80/tcp",)
        assert states[3].container_id == web["Id"] and states[3].name == f"{project}-web-1"
        assert ed.one(2, clients[2], web["Id"]) == states[3]  # what an engine event's row reads

        # Again, unchanged: nothing made; then web changed: only web is recreated.
        before = {s.name: s.container_id for s in states}
        again: list[ed.Progress] = []
        assert ed.deploy(project, model, placements, clients, again.append).objects == []
        assert {e.message for e in again if e.step == "Done"} == {f"{n} is up to date" for n in before}
        model["services"]["web"]["environment"]["GREETING"] = "hello"
        changed = ed.deploy(project, model, placements, clients, again.append)
        assert [o.name for o in changed.containers] == [f"{project}-web-1"]
        after = {s.name: s.container_id for s in ed.status(project, clients)}
        assert {n for n in before if before[n] != after[n]} == {f"{project}-web-1"}
    finally:
        assert ed.remove(project, clients, events.append, volumes=True) == []
    assert _labelled(clients[1], project) == _labelled(clients[2], project) == {
        "containers": [], "networks": [], "volumes": []
    }  # fmt: skip
    assert ed.one(2, clients[2], web["Id"]) is None


@pytest.mark.lab
@pytest.mark.timeout(180)
def test_a_missing_image_fails_naming_the_service_before_anything_is_made(
    clients, busybox, lab_registries
) -> None:
    registry = next(r for r in lab_registries if r["name"] == "anonymous")["url"].split("://", 1)[1]
    photon, missing = f"{registry}/library/photon:5.0", f"{registry}/lab/missing:1"
    project = _project()
    model = {
        "services": {
            "base": {"image": photon},
            "web": {"image": missing, "depends_on": ["base"]},
            "db": {"image": busybox, "volumes": ["data:/data"]},
        },
        "volumes": {"data": {}},
    }
    placements = [("db", 1, 1), ("base", 1, 1), ("base", 2, 2), ("web", 1, 1)]
    events: list[ed.Progress] = []
    logins: list[tuple[int, str]] = []
    try:
        with pytest.raises(ed.DeployFailed) as failed:
            ed.deploy(
                project, model, placements, clients, events.append, login=lambda h, i: logins.append((h, i))
            )
        assert failed.value.message.startswith("web on host 1: image ")
        assert f"{missing} not found" in failed.value.message
        assert failed.value.created.objects == []
        # Asked once per image a host lacks, before the pulls (busybox is there: not asked).
        assert logins == [(1, photon), (2, photon), (1, missing)]
        # Host 1 pulled photon (layer by layer) before trying the missing image.
        on_host_1 = [(e.step, e.service) for e in events if e.host_id == 1]
        assert ("Pulling", "base") in on_host_1 and ("Layer", "base") in on_host_1
        assert events[-1].step == "Failed" and events[-1].level == "error"
        assert ed.roll_back(failed.value.created, clients, events.append, volumes=True) == []
        for sdk in clients.values():
            assert _labelled(sdk, project) == {"containers": [], "networks": [], "volumes": []}
    finally:
        ed.remove(project, clients, events.append, volumes=True)
        for sdk in clients.values():
            for image in sdk.images.list(name=f"{registry}/library/photon"):
                sdk.images.remove(image.id, force=True)


@pytest.mark.lab
@pytest.mark.timeout(180)
def test_a_port_already_taken_fails_in_words_and_roll_back_removes_what_was_made(clients, busybox) -> None:
    project = _project()
    events: list[ed.Progress] = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        model = _shop(busybox, port)
        placements = [("db", 1, 2), ("app", 1, 2), ("web", 1, 2)]
        try:
            with pytest.raises(ed.DeployFailed) as failed:
                ed.deploy(project, model, placements, clients, events.append)
            assert failed.value.message.startswith("web on host 2: ")
            assert "already" in failed.value.message
            created = failed.value.created
            assert [o.name for o in created.containers] == [f"{project}-{s}-1" for s in ("db", "app", "web")]
            assert {o.name for o in created.networks} == {f"{project}_default", f"{project}_front"}
            assert [o.name for o in created.volumes] == [f"{project}_data"]

            assert ed.roll_back(created, clients, events.append) == []
            rolled = [e for e in events if e.step == "Removed"]
            assert [e.message.split()[1] for e in rolled][:3] == ["container"] * 3
            assert rolled[0].message == f"removed container {project}-web-1"  # newest first
            # Containers and networks gone; the volume stays unless asked for.
            assert _labelled(clients[2], project) == {
                "containers": [], "networks": [], "volumes": [f"{project}_data"]
            }  # fmt: skip
            # Rolling back again finds everything gone, and minds not.
            assert ed.roll_back(created, clients, events.append, volumes=True) == []
            assert _labelled(clients[2], project)["volumes"] == []
        finally:
            ed.remove(project, clients, events.append, volumes=True)


@pytest.mark.lab
@pytest.mark.timeout(120)  # the deadline below is 600 s: waiting for it would fail here
def test_an_unhealthy_dependency_fails_at_once(clients, busybox) -> None:
    project = _project()
    model = {
        "services": {
            "sick": {
                "image": busybox,
                "command": "sleep 3600",
                "healthcheck": {"test": ["CMD", "false"], "interval": "1s", "retries": 1},
            },
            "after": {
                "image": busybox,
                "command": "sleep 3600",
                "depends_on": {"sick": {"condition": "service_healthy"}},
            },
        }
    }
    events: list[ed.Progress] = []
    try:
        with pytest.raises(ed.DeployFailed) as failed:
            ed.deploy(
                project, model, [("sick", 1, 1), ("after", 1, 2)], clients, events.append, health_timeout=600
            )
        assert failed.value.message.startswith(
            "sick on host 1: after waits for it to be healthy, but it is unhealthy"
        )
        assert [o.name for o in failed.value.created.containers] == [f"{project}-sick-1"]
        assert not any(e.service == "after" and e.step == "Creating" for e in events)
        assert ed.roll_back(failed.value.created, clients, events.append) == []
        assert _labelled(clients[1], project)["containers"] == []
    finally:
        ed.remove(project, clients, events.append, volumes=True)


@pytest.mark.lab
@pytest.mark.timeout(180)
def test_remove_keeps_the_volumes_unless_asked(clients, busybox) -> None:
    project = _project()
    model = {
        "services": {"db": {"image": busybox, "command": "sleep 3600", "volumes": ["data:/data"]}},
        "volumes": {"data": {}, "outside": {"external": True, "name": f"{project}-outside"}},
    }
    events: list[ed.Progress] = []
    try:
        ed.deploy(project, model, [("db", 1, 1), ("db", 2, 2)], clients, events.append)
        assert ed.remove(project, clients, events.append) == []
        for sdk in clients.values():
            assert _labelled(sdk, project) == {
                "containers": [],
                "networks": [],
                "volumes": [f"{project}_data"],
            }
        assert ed.remove(project, clients, events.append, volumes=True) == []
        for sdk in clients.values():
            assert _labelled(sdk, project) == {"containers": [], "networks": [], "volumes": []}
        # An external volume is never made: its absence stops the deploy before any container.
        model["services"]["db"]["volumes"] = ["outside:/data"]
        with pytest.raises(ed.DeployFailed, match=f"external volume {project}-outside does not exist"):
            ed.deploy(project, model, [("db", 1, 1)], clients, events.append)
    finally:
        ed.remove(project, clients, events.append, volumes=True)
