"""A deploy from a registry that wants a login: the engine pulls with the credentials
the portal holds for that registry, and only for hosts of a project it is shared with."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest

from hosts import deploy
from hosts.models import Host
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

IMAGE_PATH = "library/nginx:1.25"


@pytest.fixture
def plain_engine(lab_engines: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], docker.DockerClient]]:
    info = next(e for e in lab_engines if not e["tls"])
    sdk = docker.DockerClient(base_url=info["url"], timeout=60)
    yield info, sdk
    sdk.close()


def _forget(sdk: docker.DockerClient, image: str) -> None:
    with contextlib.suppress(docker.errors.ImageNotFound):
        sdk.images.remove(image, force=True)


def test_the_image_part_that_names_a_registry() -> None:
    assert deploy.registry_host("127.0.0.1:5000/library/nginx:1.25") == "127.0.0.1:5000"
    assert deploy.registry_host("Harbor.Example.com/team/app") == "harbor.example.com"
    assert deploy.registry_host("localhost/app") == "localhost"
    # Docker Hub: a bare name, or a user's repository.
    assert deploy.registry_host("nginx:1.25") == "" and deploy.registry_host("someone/app") == ""


def test_a_private_registry_pull_uses_the_portals_login(
    lab_registry, project, other_project, plain_engine
) -> None:
    info, sdk = plain_engine
    registry = lab_registry("basic")
    image = f"{registry.host}/{IMAGE_PATH}"
    assert registry.password and str(registry.password) != PASSWORD
    host = Host.objects.create(project=project, name="photon-01", docker_url=info["url"], insecure=True)
    elsewhere = Host.objects.create(
        project=other_project, name="photon-99", docker_url=info["url"], insecure=True
    )
    spec = {"image": image, "name": "", "network": "none"}
    _forget(sdk, image)
    try:
        # A host of a project the registry is not shared with: the engine asks anonymously.
        assert deploy.pull_credentials(elsewhere, image) is None
        outcome = deploy.run(elsewhere, spec, "test:deploy:anonymous")
        assert outcome.startswith(f"{registry.host} refused the pull without a login"), outcome
        with pytest.raises(docker.errors.ImageNotFound):
            sdk.images.get(image)
        # The registry's own project: pulled with its login (the seed image may not start:
        # it carries no program; the pull is what this is about).
        assert deploy.pull_credentials(host, image) == {
            "username": registry.username,
            "password": str(registry.password),
        }
        outcome = deploy.run(host, spec, "test:deploy:login")
        assert "login" not in outcome and "not found" not in outcome, outcome
        assert sdk.images.get(image).id
    finally:
        for container in sdk.containers.list(all=True, filters={"ancestor": image}):
            container.remove(force=True)
        _forget(sdk, image)
