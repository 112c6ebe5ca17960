"""Container actions, logs and deploy through the portal's views, against the lab's TLS engine."""

from __future__ import annotations

import asyncio
import re
from contextlib import closing

import pytest
from django.urls import reverse

from hosts.models import Host
from portal.models import AuditEntry
from tests.conftest import session_cookie
from tests.hosts.conftest import trusted_host
from tests.lab import engines
from tests.lab.common import wait_until
from tests.test_live import communicator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lab]


@pytest.fixture
def host(project, tls_engine, no_env_ca, celery_worker_if_brokered) -> Host:  # type: ignore[no-untyped-def]
    return trusted_host(tls_engine, project)


def _state(tls_engine, name: str) -> str:  # type: ignore[no-untyped-def]
    with closing(engines.connect(tls_engine)) as sdk:
        return sdk.containers.get(name).status


def _id(tls_engine, name: str) -> str:  # type: ignore[no-untyped-def]
    with closing(engines.connect(tls_engine)) as sdk:
        return sdk.containers.get(name).id


@pytest.mark.timeout(120)
def test_stop_start_restart_and_remove_through_the_views(client, people, host, tls_engine) -> None:
    client.force_login(people["provisioner"])
    web = _id(tls_engine, "web")
    try:
        url = reverse("hosts:container_action", args=[host.pk, web, "stop"])
        assert client.post(url).status_code == 202
        wait_until(lambda: _state(tls_engine, "web") == "exited", timeout=30, what="web stopped")
        assert client.post(reverse("hosts:container_action", args=[host.pk, web, "start"])).status_code == 202
        wait_until(lambda: _state(tls_engine, "web") == "running", timeout=30, what="web started")
        with closing(engines.connect(tls_engine)) as sdk:
            started_at = sdk.containers.get("web").attrs["State"]["StartedAt"]
        assert (
            client.post(reverse("hosts:container_action", args=[host.pk, web, "restart"])).status_code == 202
        )

        def restarted() -> bool:
            with closing(engines.connect(tls_engine)) as sdk:
                c = sdk.containers.get("web")
                return c.status == "running" and c.attrs["State"]["StartedAt"] != started_at

        wait_until(restarted, timeout=30, what="web restarted")
    finally:
        with closing(engines.connect(tls_engine)) as sdk:
            c = sdk.containers.get("web")
            if c.status != "running":
                c.start()

    with closing(engines.connect(tls_engine)) as sdk:
        scratch = sdk.containers.create(
            engines_busybox(tls_engine), ["true"], name="scratch", network_mode="none"
        )
    confirm = client.get(reverse("hosts:container_remove", args=[host.pk, scratch.id]))
    assert confirm.status_code == 200 and "cannot be undone" in confirm.content.decode()
    assert client.post(reverse("hosts:container_remove", args=[host.pk, scratch.id])).status_code == 302

    def gone() -> bool:
        with closing(engines.connect(tls_engine)) as sdk:
            return "scratch" not in {c.name for c in sdk.containers.list(all=True)}

    wait_until(gone, timeout=30, what="scratch removed")


def engines_busybox(tls_engine) -> str:  # type: ignore[no-untyped-def]
    return next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox"))


@pytest.mark.timeout(120)
def test_deploy_creates_and_starts_and_reports_errors(client, people, host, tls_engine) -> None:
    client.force_login(people["provisioner"])
    page = client.get(reverse("hosts:deploy", args=[host.pk])).content.decode()
    token = page.split('name="token" value="', 1)[1].split('"', 1)[0]
    data = {
        "image": engines_busybox(tls_engine),
        "name": "deployed",
        "command": "sh -c 'echo hello; sleep 3600'",
        "environment": "GREETING=hi",
        "restart_policy": "no",
        "network": "none",
        "token": token,
    }
    try:
        assert "Deploying" in client.post(reverse("hosts:deploy", args=[host.pk]), data).content.decode()
        wait_until(lambda: _state(tls_engine, "deployed") == "running", timeout=30, what="deployed running")
        with closing(engines.connect(tls_engine)) as sdk:
            assert "GREETING=hi" in sdk.containers.get("deployed").attrs["Config"]["Env"]
        # The same name again: the engine refuses, and the person is told why (live, on the deploy topic).
        again = client.post(reverse("hosts:deploy", args=[host.pk]), data)
        assert again.status_code == 200
        # Waited for: a second deploy still queued when the container below is removed
        # would find the name free and leave a "deployed" for the next tests to trip on.
        results = AuditEntry.objects.filter(action="container.deploy_result", after__token=token)
        wait_until(lambda: results.count() == 2, timeout=60, what="the second deploy's outcome")
        assert "already in use" in results.order_by("-id")[0].after["outcome"]
        bad = client.post(reverse("hosts:deploy", args=[host.pk]), {**data, "ports": "99999:80"})
        assert "is not HOST:CONTAINER" in bad.content.decode()
    finally:
        with closing(engines.connect(tls_engine)) as sdk:
            for c in sdk.containers.list(all=True, filters={"name": "deployed"}):
                c.remove(force=True)


@pytest.mark.timeout(120)
def test_pull_only_brings_the_image_and_makes_no_container(
    client, people, host, tls_engine, lab_registries
) -> None:
    registry = next(r for r in lab_registries if r["name"] == "anonymous")["url"].split("://", 1)[1]
    image = f"{registry}/library/photon:5.0"
    client.force_login(people["provisioner"])
    page = client.get(reverse("hosts:deploy", args=[host.pk]) + "?pull=1").content.decode()
    assert re.search(r'<input[^>]*name="pull_only"[^>]*\bchecked\b', page)  # "Pull an image" ticks it
    token = page.split('name="token" value="', 1)[1].split('"', 1)[0]
    data = {"image": image, "restart_policy": "no", "network": "none", "token": token, "pull_only": "on"}
    with closing(engines.connect(tls_engine)) as sdk:
        containers = len(sdk.containers.list(all=True))
        try:
            started = client.post(reverse("hosts:deploy", args=[host.pk]), data).content.decode()
            assert f"Pulling {image}" in started
            results = AuditEntry.objects.filter(action="container.deploy_result", after__token=token)
            wait_until(lambda: results.exists(), timeout=60, what="the pull's outcome")
            assert results.get().after["outcome"] == "ok"
            assert sdk.images.get(image).tags == [image]
            assert len(sdk.containers.list(all=True)) == containers  # pulled, nothing created
            entry = AuditEntry.objects.get(action="image.pull")
            assert entry.after["image"] == image and entry.after["pull_only"] is True
        finally:
            for found in sdk.images.list(name=f"{registry}/library/photon"):
                sdk.images.remove(found.id, force=True)


@pytest.mark.timeout(120)
def test_deploy_pulls_with_progress_per_layer_and_explains_errors(host, tls_engine, lab_registries) -> None:
    import portal.live
    from hosts.fleet import deploy

    registry = next(r for r in lab_registries if r["name"] == "anonymous")["url"].split("://", 1)[1]
    published: list[dict] = []
    original = portal.live.publish

    def spy(topic: str, *, html: str = "", data=None) -> bool:  # type: ignore[no-untyped-def]
        published.append(data or {})  # what the deploy page receives; the real publish still runs
        return original(topic, html=html, data=data)

    base = {"command": "", "environment": {}, "ports": {}, "restart_policy": "no", "network": "none"}
    topic = f"{host.pk}:deploy:t"
    portal.live.publish = spy  # type: ignore[assignment]
    try:
        deploy.run(host, {**base, "image": f"{registry}/lab/missing:1", "name": "x"}, topic)
        deploy.run(host, {**base, "image": engines_busybox(tls_engine), "name": "web"}, topic)
        deploy.run(host, {**base, "image": f"{registry}/library/photon:5.0", "name": "pulled"}, topic)
    finally:
        portal.live.publish = original  # type: ignore[assignment]
        with closing(engines.connect(tls_engine)) as sdk:
            for c in sdk.containers.list(all=True, filters={"name": "pulled"}):
                c.remove(force=True)
            for image in sdk.images.list(name=f"{registry}/library/photon"):
                sdk.images.remove(image.id, force=True)
    messages = [d.get("message", "") for d in published]
    assert any("lab/missing:1 not found" in m for m in messages), messages
    assert any("already in use" in m for m in messages), messages
    layers = [d for d in published if d.get("layer")]
    assert any("Pull complete" in d["text"] or "Download complete" in d["text"] for d in layers), layers


@pytest.mark.timeout(60)
def test_logs_follow_over_the_websocket_for_members_only(client, people, host, tls_engine, project) -> None:
    web = _id(tls_engine, "web")
    topic = f"project:{project.pk}:host:{host.pk}:container:{web}:logs:50"

    async def first_lines(cookie: str) -> list[str]:
        ws = communicator(cookie=cookie)
        assert (await ws.connect(timeout=10))[0]
        await ws.send_json_to({"subscribe": [topic]})
        reply = await ws.receive_json_from(timeout=5)
        lines: list[str] = []
        if reply["subscribed"]:
            while "started" not in lines:
                lines += (await ws.receive_json_from(timeout=10))["data"].get("lines", [])
        await ws.disconnect()
        return lines

    assert "started" in asyncio.run(first_lines(session_cookie(client, people["viewer"])))
    assert asyncio.run(first_lines(session_cookie(client, people["outsider"]))) == []
