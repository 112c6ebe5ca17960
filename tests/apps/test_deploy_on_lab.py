"""An application from its template to two lab engines and away again, the way a person does it:
plan on the page, deploy (a Celery task), its page showing containers per host and ports, the
web answering, then removal keeping its volume (issue 16)."""

from __future__ import annotations

import contextlib
import io
import socket
import urllib.request
from contextlib import closing
from typing import Any

import docker.errors
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from hosts.applications import catalog
from hosts.models import Application
from portal.models import AuditEntry
from tests.apps.lab_apps import busybox_of, clean, deployed, labelled, on
from tests.hosts.conftest import trusted_host
from tests.lab import engines
from tests.lab.common import free_port, wait_until

pytestmark = pytest.mark.lab

GiB = 1024**3


def _shop(busybox: str, port: int) -> str:
    return f"""\
services:
  web:
    image: {busybox}
    command: ["sh", "-c", "echo $$GREETING > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]
    environment:
      GREETING: ${{GREETING:-hello}}
    ports: ["127.0.0.1:{port}:80"]
    depends_on: [db]
    x-portal: {{tags: [front]}}
  db:
    image: {busybox}
    command: ["sh", "-c", "touch /tmp/ok; exec sleep 3600"]
    healthcheck: {{test: ["CMD", "test", "-f", "/tmp/ok"], interval: 1s, retries: 30}}
    volumes: [data:/data]
    x-portal: {{tags: [data]}}
volumes:
  data: {{}}
"""


@pytest.mark.timeout(300)
def test_a_provisioner_deploys_across_two_hosts_and_removes_it_keeping_the_volume(
    transactional_db, client, people, project, lab_engines, celery_worker_if_brokered
) -> None:
    plain = next(e for e in lab_engines if not e["tls"])
    tls = next(e for e in lab_engines if e["tls"])
    busybox = busybox_of(plain)
    on(trusted_host(plain, project, "photon-data"), "data")
    on(trusted_host(tls, project, "photon-front"), "front")
    port = free_port()
    template = catalog.save(
        people["manager"], catalog.Draft(name="shop", source=_shop(busybox, port)), project=project
    ).template
    name = f"shop{port}"
    client.force_login(people["provisioner"])
    url = reverse("hosts:app_deploy", args=[template.pk])
    plan = client.post(url, {"name": name, "var_GREETING": "hello-lab", "step": "plan"}).content.decode()
    assert "photon-front" in plan and "photon-data" in plan and 'id="deploy-button"' in plan
    answer = client.post(url, {"name": name, "var_GREETING": "hello-lab", "step": "deploy"})
    application = Application.objects.get(name=name)
    assert answer["Location"] == reverse("hosts:app", args=[application.pk])
    try:
        deployed(application)
        assert application.state == "running", application.outcome
        assert labelled(plain, name) == {"containers": [f"{name}-db-1"], "volumes": [f"{name}_data"]}
        assert labelled(tls, name) == {"containers": [f"{name}-web-1"], "volumes": []}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as web:
            assert web.read().decode().strip() == "hello-lab"

        def containers() -> str:
            page = client.get(reverse("hosts:app", args=[application.pk])).content.decode()
            return page[page.index('id="app-containers"') : page.index('id="app-placements"')]

        # The web waits only for the db to start (depends_on's short form); its health follows.
        wait_until(lambda: ">healthy<" in containers(), timeout=60, what="the db's health on the page")
        page = client.get(reverse("hosts:app", args=[application.pk])).content.decode()
        assert f"<code>127.0.0.1:{port}-&gt;80/tcp</code>" in containers()
        assert "photon-front" in page and "photon-data" in page and "hello-lab" not in page
        assert f"{name}_data" in page

        # Remove: the confirmation lists the volume; kept unless ticked.
        remove = reverse("hosts:app_remove", args=[application.pk])
        assert f"{name}_data" in client.get(remove).content.decode()
        client.post(remove)
        wait_until(
            lambda: Application.objects.get(pk=application.pk).state == "removed", timeout=60, what="removed"
        )
        assert labelled(plain, name) == {"containers": [], "volumes": [f"{name}_data"]}
        assert labelled(tls, name) == {"containers": [], "volumes": []}
        assert AuditEntry.objects.filter(action="app.remove", actor=people["provisioner"]).exists()

        # The kept volume, removed later on request (its page lists it).
        detail = client.get(reverse("hosts:app", args=[application.pk])).content.decode()
        assert 'id="app-remove-volumes"' in detail and f"{name}_data" in detail
        assert f"{name}_data" in client.get(remove).content.decode()
        client.post(remove, {"volumes": "on"})
        wait_until(lambda: labelled(plain, name)["volumes"] == [], timeout=60, what="the kept volume removed")
        assert AuditEntry.objects.filter(action="app.remove", after={"volumes": True}).exists()
    finally:
        clean(plain, name)
        clean(tls, name)


@pytest.mark.timeout(300)
def test_a_failed_deploy_says_why_and_rolls_back_what_it_made(
    transactional_db, client, people, project, lab_engines, celery_worker_if_brokered
) -> None:
    plain = next(e for e in lab_engines if not e["tls"])
    busybox = busybox_of(plain)
    on(trusted_host(plain, project, "photon-1"), "front", "data")
    port = free_port()
    template = catalog.save(
        people["manager"], catalog.Draft(name="clash", source=_shop(busybox, port)), project=project
    ).template
    client.force_login(people["provisioner"])
    name = f"clash{port}"
    # The web's port is taken on the host by the time the deploy gets to it (db first: healthy).
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        client.post(reverse("hosts:app_deploy", args=[template.pk]), {"name": name, "step": "deploy"})
        application = Application.objects.get(name=name)
        wait_until(
            lambda: Application.objects.get(pk=application.pk).state not in ("queued", "deploying"),
            timeout=180,
            what="the deploy to end",
        )
    try:
        application.refresh_from_db()
        assert application.state == "failed"
        assert application.outcome.startswith("web on ") and "already" in application.outcome
        # The web was created, then could not start: both containers are left for the person to see.
        assert labelled(plain, name) == {
            "containers": [f"{name}-db-1", f"{name}-web-1"],
            "volumes": [f"{name}_data"],
        }
        page = client.get(reverse("hosts:app", args=[application.pk])).content.decode()
        assert "already" in page and 'id="app-roll-back"' in page
        client.post(reverse("hosts:app_roll_back", args=[application.pk]))
        wait_until(
            lambda: Application.objects.get(pk=application.pk).state == "rolled_back",
            timeout=60,
            what="rolled back",
        )
        # What the deploy made is gone, its new volume too.
        assert labelled(plain, name) == {"containers": [], "volumes": []}
        assert AuditEntry.objects.filter(action="app.roll_back", actor=people["provisioner"]).exists()
    finally:
        clean(plain, name)


@pytest.mark.timeout(300)
def test_a_script_deploys_with_manage_py_app_and_waits_for_the_outcome(
    transactional_db, people, project, lab_engines, celery_worker_if_brokered
) -> None:
    plain = next(e for e in lab_engines if not e["tls"])
    busybox = busybox_of(plain)
    on(trusted_host(plain, project, "photon-1"), "front", "data")
    port = free_port()
    catalog.save(people["manager"], catalog.Draft(name="solo", source=_shop(busybox, port)), project=project)
    name = f"solo{port}"
    out = io.StringIO()
    try:
        call_command(
            "app",
            "deploy",
            "solo",
            "--user",
            "prov",
            "--name",
            name,
            "--var",
            "GREETING=from-a-script",
            stdout=out,
        )
        assert out.getvalue().splitlines()[-1] == f"{name}: deployed (2 containers)."
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as web:
            assert web.read().decode().strip() == "from-a-script"
        with pytest.raises(CommandError) as taken:  # the name is the application's now
            call_command("app", "deploy", "solo", "--user", "prov", "--name", name, stdout=io.StringIO())
        assert taken.value.returncode == 2 and "deployed already" in str(taken.value)
    finally:
        clean(plain, name)


@pytest.mark.timeout(300)
def test_an_update_to_a_newer_tag_recreates_only_its_service_and_rolls_back(
    transactional_db, client, people, project, lab_engines, lab_registries, celery_worker_if_brokered
) -> None:
    plain = next(e for e in lab_engines if not e["tls"])
    port = free_port()
    image = f"{_anonymous(lab_registries)}/scratch/upd{port}"
    with closing(engines.connect(plain)) as sdk:
        # Both tags in the lab registry, neither on the host: the deploy and the update pull them.
        _push_as(sdk, busybox_of(plain), image, "1")
        _push_as(sdk, busybox_of(plain), image, "2", "LABEL release=2")
        for tag in ("1", "2"):
            sdk.api.remove_image(f"{image}:{tag}")
    on(trusted_host(plain, project, "photon-1"), "front", "data")
    v1 = _shop(busybox_of(plain), port).replace(f"image: {busybox_of(plain)}", f"image: {image}:1", 1)
    version = catalog.save(people["manager"], catalog.Draft(name="upd", source=v1), project=project)
    name = f"upd{port}"
    client.force_login(people["provisioner"])
    client.post(reverse("hosts:app_deploy", args=[version.template.pk]), {"name": name, "step": "deploy"})
    application = Application.objects.get(name=name)

    def running() -> dict[str, Any]:
        with closing(engines.connect(plain)) as sdk:
            found = _app_containers(sdk, name)
            return {
                c.labels["com.docker.compose.service"]: (c.id, c.image.labels.get("release")) for c in found
            }

    def page() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as web:
            return web.read().decode().strip()

    try:
        assert deployed(application).state == "running", application.outcome
        first = running()
        assert first["web"][1] is None and page() == "hello"
        # v2 moves the web to the newer tag: the db is left as it runs.
        catalog.save(
            people["manager"],
            catalog.Draft(name="upd", source=v1.replace(f"{image}:1", f"{image}:2"), note="web 2"),
            template=version.template,
        )
        client.post(reverse("hosts:app_update", args=[application.pk]))
        assert deployed(application).state == "running", application.outcome
        second = running()
        assert second["db"] == first["db"] and second["web"][0] != first["web"][0]
        assert second["web"][1] == "2" and page() == "hello" and application.version.number == 2
        detail = client.get(reverse("hosts:app", args=[application.pk])).content.decode()
        assert 'id="app-roll-back-version"' in detail and "Roll back to v1" in detail

        client.post(reverse("hosts:app_update", args=[application.pk]), {"version": "1"})
        assert deployed(application).state == "running", application.outcome
        third = running()
        assert third["db"] == first["db"] and third["web"][0] != second["web"][0]
        assert third["web"][1] is None and page() == "hello"
        assert application.version.number == 1 and application.previous_version.number == 2
    finally:
        clean(plain, name)
        with closing(engines.connect(plain)) as sdk:
            for tag in ("1", "2"):
                with contextlib.suppress(docker.errors.APIError):
                    sdk.api.remove_image(f"{image}:{tag}", force=True)


@pytest.mark.timeout(300)
def test_an_update_pulls_a_tag_that_moved_and_recreates_only_its_service(
    transactional_db, client, people, project, lab_engines, lab_registries, celery_worker_if_brokered
) -> None:
    plain = next(e for e in lab_engines if not e["tls"])
    port = free_port()
    image = f"{_anonymous(lab_registries)}/scratch/web{port}"
    with closing(engines.connect(plain)) as sdk:
        _push_as(sdk, busybox_of(plain), image, "1")
    on(trusted_host(plain, project, "photon-1"), "front", "data")
    source = _shop(busybox_of(plain), port).replace(f"image: {busybox_of(plain)}", f"image: {image}:1", 1)
    version = catalog.save(people["manager"], catalog.Draft(name="moved", source=source), project=project)
    name = f"moved{port}"
    client.force_login(people["provisioner"])
    client.post(reverse("hosts:app_deploy", args=[version.template.pk]), {"name": name, "step": "deploy"})
    application = Application.objects.get(name=name)
    try:
        assert deployed(application).state == "running", application.outcome
        with closing(engines.connect(plain)) as sdk:
            before = {c.labels["com.docker.compose.service"]: c.id for c in _app_containers(sdk, name)}
            # The tag moves in the registry to a new image; the host keeps only the old one.
            _push_as(sdk, busybox_of(plain), image, "1", "LABEL moved=yes")
            sdk.api.remove_image(f"{image}:1")
        client.post(reverse("hosts:app_update", args=[application.pk]), {"version": "1"})
        assert deployed(application).state == "running", application.outcome
        with closing(engines.connect(plain)) as sdk:
            after = {c.labels["com.docker.compose.service"]: c for c in _app_containers(sdk, name)}
            assert after["db"].id == before["db"] and after["web"].id != before["web"]
            assert after["web"].image.labels.get("moved") == "yes"
    finally:
        clean(plain, name)
        with closing(engines.connect(plain)) as sdk, contextlib.suppress(docker.errors.APIError):
            sdk.api.remove_image(f"{image}:1", force=True)


def _anonymous(lab_registries: list[dict[str, Any]]) -> str:
    """The lab registry anyone may pull from and push to, as an image reference starts."""
    registry = next(r for r in lab_registries if r["name"] == "anonymous")
    return str(registry["url"]).split("://", 1)[1]


def _push_as(sdk: Any, base: str, image: str, tag: str, change: str = "") -> None:
    """``base`` (or, with a Dockerfile ``change``, a new image made from it) pushed as image:tag."""
    if change:
        made = sdk.containers.create(base, ["true"])
        made.commit(repository=image, tag=tag, changes=[change])
        made.remove()
    else:
        sdk.api.tag(base, image, tag)
    for line in sdk.api.push(image, tag=tag, stream=True, decode=True):
        assert "error" not in line, line


def _app_containers(sdk: Any, name: str) -> list[Any]:
    return sdk.containers.list(all=True, filters={"label": f"com.docker.compose.project={name}"})
