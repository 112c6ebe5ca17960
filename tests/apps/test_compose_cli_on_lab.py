"""The portal and the Compose CLI on one host, both ways (issue 16), with Debian's docker-compose
(v1.29) against the lab's plain engine:

- what the portal deployed, ``docker-compose -p NAME -f <the exported template> ps`` lists, and
  ``up -d --no-recreate`` finds nothing to create (no container is replaced);
- a project started by hand (``docker-compose up -d``) shows on the Applications page as
  unmanaged, is adopted, shows as an application with its containers, and the portal's remove
  takes its containers away (``docker-compose ps`` lists none).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from hosts.applications import catalog
from hosts.models import Application
from tests.apps.lab_apps import apps_page, busybox_of, clean, deployed, on
from tests.hosts.conftest import trusted_host
from tests.lab import common, engines
from tests.lab.common import wait_until
from tests.lab.fixtures import start

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def compose_cli() -> str:
    return start(lambda: common.require_binary("docker-compose", "docker-compose"))


def _compose(cli: str, info: dict[str, Any], project: str, file: Path, *args: str) -> str:
    """Run the Compose CLI against the lab engine (its plain TCP endpoint); what it printed (its
    progress goes to stderr), or it fails."""
    # Nothing of this machine's Docker or Compose settings: only the lab engine.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
    env["DOCKER_HOST"] = info["url"]
    done = subprocess.run(
        [cli, "-p", project, "-f", str(file), *args],
        env=env,
        cwd=file.parent,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"docker-compose {' '.join(args)}: {done.stderr}"
    return done.stdout + done.stderr


def _ids(cli: str, info: dict[str, Any], project: str, file: Path) -> list[str]:
    """The project's container ids, as ``docker-compose ps -q`` lists them."""
    listed = _compose(cli, info, project, file, "ps", "-q").split()
    return sorted(word for word in listed if len(word) == 64 and set(word) <= set("0123456789abcdef"))


def _networks(info: dict[str, Any], project: str) -> list[str]:
    sdk = engines.connect(info)
    try:
        return [
            n["Name"] for n in sdk.api.networks(filters={"label": f"com.docker.compose.project={project}"})
        ]
    finally:
        sdk.close()


@pytest.mark.timeout(300)
def test_the_compose_cli_lists_what_the_portal_deployed_and_finds_nothing_to_create(
    transactional_db, client, people, project, lab_engines, celery_worker_if_brokered, compose_cli, tmp_path
) -> None:
    plain = next(e for e in lab_engines if not e["tls"])
    on(trusted_host(plain, project, "photon-compose"))
    serve = json.dumps(engines.SERVE_CMD)
    source = f"""\
services:
  web:
    image: {busybox_of(plain)}
    command: {serve}
    environment:
      GREETING: ${{GREETING:-hello}}
    depends_on: [db]
  db:
    image: {busybox_of(plain)}
    command: {serve}
    volumes: [data:/data]
volumes:
  data: {{}}
"""
    template = catalog.save(
        people["manager"], catalog.Draft(name="cli", source=source), project=project
    ).template
    name = f"cli{secrets.token_hex(4)}"
    client.force_login(people["provisioner"])
    client.post(reverse("hosts:app_deploy", args=[template.pk]), {"name": name, "step": "deploy"})
    application = Application.objects.get(name=name)
    try:
        deployed(application)
        assert application.state == "running", application.outcome
        exported = client.get(reverse("hosts:app_template_export", args=[template.pk])).content
        file = tmp_path / "compose.yaml"
        file.write_bytes(exported)

        listed = _compose(compose_cli, plain, name, file, "ps")
        assert f"{name}-web-1" in listed and f"{name}-db-1" in listed
        before = _ids(compose_cli, plain, name, file)
        assert len(before) == 2
        # Its networks and volumes are taken as they are; its containers kept as they are.
        said = _compose(compose_cli, plain, name, file, "up", "-d", "--no-recreate")
        assert "Creating" not in said and "Recreating" not in said, said
        assert _ids(compose_cli, plain, name, file) == before
    finally:
        clean(plain, name)


@pytest.mark.timeout(300)
def test_a_project_started_by_hand_is_adopted_then_removed_by_the_portal(
    transactional_db, client, people, project, lab_engines, celery_worker_if_brokered, compose_cli, tmp_path
) -> None:
    plain = next(e for e in lab_engines if not e["tls"])
    on(trusted_host(plain, project, "photon-hand"))
    serve = json.dumps(engines.SERVE_CMD)
    file = tmp_path / "docker-compose.yml"
    file.write_text(
        f"services:\n  web:\n    image: {busybox_of(plain)}\n    command: {serve}\n"
        f"  worker:\n    image: {busybox_of(plain)}\n    command: {serve}\n"
    )
    name = f"handmade{secrets.token_hex(4)}"
    try:
        _compose(compose_cli, plain, name, file, "up", "-d")
        client.force_login(people["provisioner"])
        page = apps_page(client)
        row = page[page.index(f'id="unmanaged-{project.pk}-{name}"') :].split("</tr>")[0]
        assert "Unmanaged" in row and "photon-hand" in row and "web, worker" in row and "<td>2</td>" in row

        answer = client.post(reverse("hosts:app_adopt"), {"project": project.pk, "name": name})
        application = Application.objects.get(name=name)
        assert answer["Location"] == reverse("hosts:app", args=[application.pk])
        assert application.state == "running" and application.adopted
        detail = client.get(answer["Location"]).content.decode()
        containers = detail[detail.index('id="app-containers"') : detail.index('id="app-placements"')]
        assert f"{name}_web_1" in containers and f"{name}_worker_1" in containers
        assert 'id="app-adopted"' in detail
        page = apps_page(client)
        assert (
            f'id="application-{application.pk}"' in page and f'id="unmanaged-{project.pk}-{name}"' not in page
        )

        client.post(reverse("hosts:app_remove", args=[application.pk]))
        wait_until(
            lambda: Application.objects.get(pk=application.pk).state == "removed", timeout=60, what="removed"
        )
        assert _ids(compose_cli, plain, name, file) == []
        assert _networks(plain, name) == []  # Compose's own default network too: labelled, removed
    finally:
        clean(plain, name)
