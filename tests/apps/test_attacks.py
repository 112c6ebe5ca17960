"""Applications, attacked: a Provisioner deploys templates on hosts where the portal holds root,
so no value may give a container the host, neither in the file nor through a variable; and a
token scoped to one project, a Viewer or another project's member reaches nothing."""

from __future__ import annotations

from typing import Any

import pytest

from hosts.applications import catalog, deployments
from hosts.models import Application, AppTemplate, Host, HostStatus
from portal import access
from portal.api_auth import issue
from portal.models import Project, Role
from portal.refused import Refused
from tests.api.common import client_for

pytestmark = pytest.mark.django_db

BASE = "services:\n  app:\n    image: lab/busybox:1.35\n"


@pytest.fixture
def shop(people: dict[str, Any], project: Project) -> AppTemplate:
    Host.objects.create(project=project, name="photon-1", docker_url="tcp://p1:2376", status=HostStatus.ON)
    source = BASE + "    privileged: ${PRIV:-false}\n    environment:\n      NOTE: ${NOTE:-x}\n"
    return catalog.save(
        people["manager"], catalog.Draft(name="shop", source=source), project=project
    ).template


@pytest.mark.parametrize(
    "line",
    [
        "    privileged: true",
        "    volumes: ['/:/host']",
        "    volumes: ['${SRC:-/etc}:/host']",
        "    volumes: [{type: bind, source: /var/run/docker.sock, target: /sock}]",
        "    pid: host",
        "    network_mode: host",
        "    cap_add: [SYS_ADMIN]",
        "    devices: ['/dev/sda:/dev/sda']",
        "    security_opt: ['seccomp=unconfined']",
        "    userns_mode: host",
    ],
)
def test_a_file_that_gives_a_container_the_host_is_never_saved(people, project, line: str) -> None:
    with pytest.raises(Refused) as refused:
        catalog.save(
            people["manager"], catalog.Draft(name="evil", source=BASE + line + "\n"), project=project
        )
    assert any("line 4" in d for d in refused.value.details), refused.value.details
    assert not AppTemplate.objects.filter(name="evil").exists()


def test_a_variable_cannot_make_a_container_privileged_nor_add_keys(people, shop) -> None:
    with pytest.raises(Refused) as refused:
        deployments.propose(people["provisioner"], shop, name="shop", values={"PRIV": "true"})
    assert any("privileged" in d for d in refused.value.details)
    # A value is a value: YAML in it stays text inside the one string it fills.
    proposal = deployments.propose(
        people["provisioner"], shop, name="shop", values={"NOTE": "x\n    privileged: true\n    pid: host"}
    )
    app = proposal.model["services"]["app"]
    assert app["privileged"] is False and "pid" not in app
    assert app["environment"]["NOTE"] == "x\n    privileged: true\n    pid: host"


def test_a_token_for_another_project_or_read_only_reaches_no_deploy(people, shop, other_project) -> None:
    body = {"name": "shop"}
    url = f"/api/app-templates/{shop.pk}/deploy/"
    # An Admin's token scoped to another project is no Admin here.
    admin_elsewhere = client_for(None)
    _, token = issue(people["admin"], "elsewhere", project=other_project)
    admin_elsewhere.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert admin_elsewhere.post(url, body, format="json").status_code == 404
    read_only = client_for(None)
    _, token = issue(people["provisioner"], "reader", read_only=True)
    read_only.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert read_only.post(url, body, format="json").status_code == 403
    assert not Application.objects.exists()


def test_an_application_of_another_project_is_not_found_by_a_forged_id(
    people, shop, make_user, other_project
) -> None:
    proposal = deployments.propose(people["provisioner"], shop, name="shop", values={})
    Application.objects.create(
        project=shop.project, name="shop", source=proposal.version.source, state="running"
    )
    application = Application.objects.get(name="shop")
    stranger = make_user("stranger", project=other_project, role=Role.PROJECT_ADMIN)
    assert not access.can(stranger, "app.view", application.project_id)
    api = client_for(stranger)
    for path in ("", "remove/", "roll-back/", "operate/", "scale/", "update/"):
        method = api.get if not path else api.post
        answer = method(f"/api/applications/{application.pk}/{path}", {"action": "stop"}, format="json")
        assert answer.status_code == 404, path
    assert Application.objects.get(pk=application.pk).state == "running"


def test_the_kept_volumes_of_a_removed_application_are_not_removed_once_its_name_is_reused(
    people, shop
) -> None:
    """Volumes are found by the Compose project's name: a newer application of that name owns them."""
    source = shop.versions.first().source
    old = Application.objects.create(project=shop.project, name="shop", source=source, state="removed")
    with pytest.raises(Refused, match="is removed already"):
        deployments.request_remove(people["provisioner"], old, volumes=False)
    Application.objects.create(project=shop.project, name="shop", source=source, state="running")
    with pytest.raises(Refused, match="in use by another application"):
        deployments.request_remove(people["provisioner"], old, volumes=True)


def test_the_admin_shows_an_application_without_its_variables_values(admin_client, people, shop) -> None:
    application = Application.objects.create(
        project=shop.project, name="shop", source="services: {}", variables='{"DB_PASSWORD": "s3cret-value"}'
    )
    page = admin_client.get(f"/admin/hosts/application/{application.pk}/change/")
    assert page.status_code == 200 and "s3cret-value" not in page.content.decode()
