"""A deploy from a registry that wants a login: the engine pulls with the credentials
the portal holds for that registry, and only for hosts of a project it is shared with."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest

from hosts.fleet import deploy
from tests.conftest import PASSWORD
from tests.hosts.conftest import trusted_host

pytestmark = pytest.mark.django_db

IMAGE_PATH = "library/nginx:1.25"


def _forget(sdk: docker.DockerClient, image: str) -> None:
    with contextlib.suppress(docker.errors.ImageNotFound):
        sdk.images.remove(image, force=True)


def test_the_image_part_that_names_a_registry() -> None:
    assert deploy.registry_host("127.0.0.1:5000/library/nginx:1.25") == "127.0.0.1:5000"
    assert deploy.registry_host("Harbor.Example.com/team/app") == "harbor.example.com"
    assert deploy.registry_host("localhost/app") == "localhost"
    # Docker Hub: a bare name, or a user's repository.
    assert deploy.registry_host("nginx:1.25") == "" and deploy.registry_host("someone/app") == ""


@pytest.fixture
def tls_engine(lab_engines: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], docker.DockerClient]]:
    info = next(e for e in lab_engines if e["tls"])
    sdk = docker.DockerClient(base_url=f"unix://{info['socket']}", timeout=60)
    yield info, sdk
    sdk.close()


def test_a_private_registry_pull_uses_the_portals_login(
    lab_registry, project, other_project, tls_engine
) -> None:
    info, sdk = tls_engine
    registry = lab_registry("basic")
    image = f"{registry.host}/{IMAGE_PATH}"
    assert registry.password and str(registry.password) != PASSWORD
    # Issue 12: a login goes only to a verified engine (TLS, pinned): the lab's TLS engine.
    host = trusted_host(info, project)
    elsewhere = trusted_host(info, other_project, name="photon-99")
    spec = {"image": image, "name": "", "network": "none"}
    _forget(sdk, image)
    try:
        # A host of a project the registry is not shared with: the engine asks anonymously.
        assert deploy.pull_credentials(elsewhere, image).auth is None
        outcome = deploy.run(elsewhere, spec, "test:deploy:anonymous")
        assert outcome.startswith(f"{registry.host} refused the pull without a login"), outcome
        with pytest.raises(docker.errors.ImageNotFound):
            sdk.images.get(image)
        # The registry's own project: pulled with its login (the seed image may not start:
        # it carries no program; the pull is what this is about). Basic registries have no
        # token service: the password goes, to this verified engine only.
        assert deploy.pull_credentials(host, image).auth == {
            "username": registry.username,
            "password": str(registry.password),
            "serveraddress": registry.host,
        }
        outcome = deploy.run(host, spec, "test:deploy:login")
        assert "login" not in outcome and "not found" not in outcome, outcome
        assert sdk.images.get(image).id
    finally:
        for container in sdk.containers.list(all=True, filters={"ancestor": image}):
            container.remove(force=True)
        _forget(sdk, image)
