"""Registries in the portal's database, pointing at the lab's real registries and Harbor."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from portal.models import Project, Role
from registry.clients import http
from registry.models import DeletePrefix, Registry
from tests.lab import seed


@pytest.fixture(autouse=True)
def fresh_registry_state(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Each test starts with nothing cached and no remembered tokens.

    A namespace of its own rather than cache.clear(): on Redis that would flush the
    database the Celery broker and the channel layer share with the rest of the suite.
    """
    settings.REGISTRY_CACHE_NAMESPACE = f"test-{uuid.uuid4().hex[:12]}:"
    http.forget_tokens()
    yield
    http.forget_tokens()


@pytest.fixture
def project(db: None) -> Project:
    return Project.objects.create(name="team")


@pytest.fixture
def other_project(db: None) -> Project:
    return Project.objects.create(name="elsewhere")


def registry_from(info: dict[str, Any], *, name: str | None = None, projects: list[Project] = ()) -> Registry:  # type: ignore[assignment]
    """A Registry row for a lab peer, saved without the live check (tests of that check use the form)."""
    harbor = info["kind"] == "harbor"
    auth = Registry.Auth.ANONYMOUS
    if info.get("user"):
        auth = Registry.Auth.ROBOT if harbor else Registry.Auth.BASIC
    registry = Registry.objects.create(
        name=name or str(info.get("name") or info["kind"]),
        kind=Registry.Kind.HARBOR if harbor else Registry.Kind.DISTRIBUTION,
        url=str(info["url"]),
        auth=auth,
        username=str(info.get("user") or ""),
        password=str(info.get("password") or ""),
    )
    registry.projects.set(projects)
    return registry


@pytest.fixture
def lab_registry(lab_registries: list[dict[str, Any]], project: Project) -> Callable[[str], Registry]:
    """``lab_registry("anonymous" | "basic" | "token")``: that lab registry, shared with ``project``."""

    def make(name: str) -> Registry:
        info = next(r for r in lab_registries if r["name"] == name)
        return grant_deletes(registry_from(info, projects=[project]), project)

    return make


def grant_deletes(registry: Registry, project: Project) -> Registry:
    """Issue 12: a Project admin deletes only under prefixes an Admin grants the project:
    the delete tests' own repositories (``scratch/...``) and the seed's delete repository."""
    for prefix in ("scratch", seed.describe().delete_repo):
        DeletePrefix.objects.create(registry=registry, project=project, prefix=prefix)
    return registry


@pytest.fixture
def harbor_registry(lab_harbor: dict[str, Any], project: Project) -> Registry:
    return grant_deletes(registry_from(lab_harbor, name="harbor", projects=[project]), project)


@pytest.fixture
def viewer(make_user, project: Project):  # type: ignore[no-untyped-def]
    return make_user("vera", project=project, role=Role.VIEWER)


@pytest.fixture
def project_admin(make_user, project: Project):  # type: ignore[no-untyped-def]
    return make_user("paula", project=project, role=Role.PROJECT_ADMIN)


@pytest.fixture
def outsider(make_user, other_project: Project):  # type: ignore[no-untyped-def]
    return make_user("otto", project=other_project, role=Role.PROJECT_ADMIN)


@pytest.fixture
def admin(make_user):  # type: ignore[no-untyped-def]
    return make_user("ada", admin=True)


class _Bearer(requests.auth.AuthBase):
    """A push token from the lab's token issuer (the token registry takes nothing else)."""

    def __init__(self, info: dict[str, Any], repository: str) -> None:
        answer = requests.get(
            str(info["realm"]),
            params={"service": info["service"], "scope": f"repository:{repository}:pull,push"},
            auth=(str(info["user"]), str(info["password"])),
            timeout=30,
        )
        answer.raise_for_status()
        self.token = answer.json()["token"]

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


@pytest.fixture
def scratch_images() -> Callable[[dict[str, Any]], tuple[str, dict[str, str]]]:
    """Push a repository of its own into a lab registry, so a delete test changes nothing
    another test relies on: tags ``one`` and ``also-one`` (one digest) and ``two``."""

    def push(info: dict[str, Any]) -> tuple[str, dict[str, str]]:
        repository = f"scratch/portal-{uuid.uuid4().hex[:10]}"
        when = datetime.now(UTC).replace(microsecond=0)
        one = seed._manifest(seed.Image(("base-amd64",), when, labels={"run": repository, "n": "1"}))
        two = seed._manifest(seed.Image(("base-amd64",), when, labels={"run": repository, "n": "2"}))
        layers = tuple(blob for blob, _ in seed._layers().values())
        plan = seed.Plan({repository: {"one": one, "also-one": one, "two": two}}, layers, source=repository)
        auth: Any = None
        if info.get("auth") == "token":
            auth = _Bearer(info, repository)
        elif info.get("user"):
            auth = (str(info["user"]), str(info["password"]))
        seed.push(str(info["url"]), plan, auth=auth, workers=2)
        return repository, {"one": one.digest, "also-one": one.digest, "two": two.digest}

    return push
