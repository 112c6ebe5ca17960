"""Issue 12, point 4 (logins): a registry's login goes only to verified engines (TLS with a
pinned certificate, or SSH with a pinned host key) of projects the registry is shared with;
where the registry has a token service, the engine gets a short-lived token to pull that
one repository, never the password. Against the lab's dockerd and token registry."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest
from docker.api.client import APIClient

from hosts.fleet import deploy
from hosts.models import Host
from portal.models import Project
from registry.clients import http
from registry.models import Registry
from tests.hosts.conftest import trusted_host
from tests.registry.conftest import registry_from

pytestmark = pytest.mark.django_db

IMAGE_PATH = "library/nginx:1.25"


@pytest.fixture(autouse=True)
def p4_fresh_tokens(settings: Any) -> Iterator[None]:
    settings.REGISTRY_CACHE_NAMESPACE = f"test-{uuid.uuid4().hex[:12]}:"
    http.forget_tokens()
    yield
    http.forget_tokens()


@pytest.fixture
def p4_sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str] | None]:
    """Every X-Registry-Auth the portal hands an engine (the real pull still runs)."""
    sent: list[dict[str, str] | None] = []
    original = APIClient.pull

    def recording(self: APIClient, repository: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(kwargs.get("auth_config"))
        return original(self, repository, *args, **kwargs)

    monkeypatch.setattr(APIClient, "pull", recording)
    return sent


@pytest.fixture
def p4_world(
    lab_registries: list[dict[str, Any]], lab_engines: list[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    team, other = Project.objects.create(name="team"), Project.objects.create(name="other")
    info = next(r for r in lab_registries if r["name"] == "token")
    registry = registry_from(info, projects=[team])
    tls = next(e for e in lab_engines if e["tls"])
    plain = next(e for e in lab_engines if not e["tls"])
    image = f"{registry.host}/{IMAGE_PATH}"
    engines = [docker.DockerClient(base_url=f"unix://{e['socket']}", timeout=60) for e in (tls, plain)]

    def forget() -> None:
        for sdk in engines:
            for container in sdk.containers.list(all=True, filters={"ancestor": image}):
                container.remove(force=True)
            with contextlib.suppress(docker.errors.ImageNotFound):
                sdk.images.remove(image, force=True)

    forget()
    yield {
        "registry": registry,
        "image": image,
        "team": team,
        "other": other,
        "tls": tls,
        "plain": plain,
        "tls_sdk": engines[0],
        "plain_sdk": engines[1],
    }
    forget()
    for sdk in engines:
        sdk.close()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _has(sdk: docker.DockerClient, image: str) -> bool:
    try:
        sdk.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_a_verified_engine_gets_a_pull_scoped_token_not_the_password(p4_world, p4_sent) -> None:
    registry: Registry = p4_world["registry"]
    password = str(registry.password)
    host = trusted_host(p4_world["tls"], p4_world["team"])
    outcome = deploy.run(host, {"image": p4_world["image"], "name": "", "network": "none"}, "t:deploy:tok")
    assert "login" not in outcome and "not found" not in outcome, outcome
    assert _has(p4_world["tls_sdk"], p4_world["image"])
    (auth,) = p4_sent
    assert auth is not None and set(auth) == {"registrytoken", "serveraddress"}
    assert password not in json.dumps(auth) and registry.username not in json.dumps(auth)
    access = _claims(auth["registrytoken"])["access"]
    assert access == [{"type": "repository", "name": "library/nginx", "actions": ["pull"]}]


def test_an_insecure_engine_gets_no_credentials_and_a_clear_message(p4_world, p4_sent) -> None:
    """Project team's admin points a host at a plain TCP engine (or one nobody pinned):
    whoever answers there must not receive the registry's login."""
    host = Host.objects.create(
        project=p4_world["team"], name="plain", docker_url=p4_world["plain"]["url"], insecure=True
    )
    outcome = deploy.run(host, {"image": p4_world["image"], "name": "", "network": "none"}, "t:deploy:plain")
    assert p4_sent == [None]
    assert "refused the pull without a login" in outcome
    assert "only to engines reached over TLS with a pinned certificate" in outcome
    assert not _has(p4_world["plain_sdk"], p4_world["image"])


def test_an_unpinned_engine_gets_no_credentials(p4_world, p4_sent) -> None:
    host = trusted_host(p4_world["tls"], p4_world["team"])
    host.tls_fingerprint = ""
    host.save()
    login = deploy.pull_credentials(host, p4_world["image"])
    assert login.auth is None and "not reached over TLS with a pinned certificate" in login.withheld
    ssh = Host.objects.create(project=p4_world["team"], name="ssh", docker_url="ssh://root@198.51.100.9:22")
    login = deploy.pull_credentials(ssh, p4_world["image"])
    assert login.auth is None and "SSH host key of ssh is not pinned" in login.withheld


def test_a_project_the_registry_is_not_shared_with_gets_nothing(p4_world, p4_sent) -> None:
    host = trusted_host(p4_world["tls"], p4_world["other"], name="theirs")
    outcome = deploy.run(host, {"image": p4_world["image"], "name": "", "network": "none"}, "t:deploy:other")
    assert p4_sent == [None]
    assert "denied" in outcome
    assert not _has(p4_world["tls_sdk"], p4_world["image"])
