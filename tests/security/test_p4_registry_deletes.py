"""Issue 12, point 4 (deletes): deleting in a registry needs the registry's project-admin
role AND a repository under a prefix the registry grants that project (an Admin sets them
per project; none = Admins only). Through the real delete view, against the lab registry."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from portal.models import AuditEntry, Project, Role
from registry.clients.distribution import DistributionClient
from registry.clients.errors import NotFound
from registry.clients.http import Transport
from registry.models import DeletePrefix, Registry
from tests.registry.conftest import registry_from, scratch_images  # noqa: F401 -- fixture reused

pytestmark = pytest.mark.django_db


@pytest.fixture
def p4_delete_world(lab_registries: list[dict[str, Any]], scratch_images, make_user) -> dict[str, Any]:  # noqa: F811
    info = next(r for r in lab_registries if r["name"] == "anonymous")
    a, b = Project.objects.create(name="a"), Project.objects.create(name="b")
    registry = registry_from(info, projects=[a, b])
    repository, digests = scratch_images(info)
    return {
        "registry": registry,
        "a": a,
        "b": b,
        "repository": repository,
        "digests": digests,
        "a_admin": make_user("anna", project=a, role=Role.PROJECT_ADMIN),
        "b_admin": make_user("bert", project=b, role=Role.PROJECT_ADMIN),
    }


def _delete(client: Any, world: dict[str, Any]) -> Any:
    url = reverse("registry:delete", args=[world["registry"].pk, world["repository"]])
    return client.post(url, {"reference": "two", "digest": world["digests"]["two"], "what": "artifact"})


def _still_there(world: dict[str, Any]) -> bool:
    registry: Registry = world["registry"]
    return (
        DistributionClient(Transport(registry.url)).digest(world["repository"], "two")
        == world["digests"]["two"]
    )


def test_a_project_admin_without_a_prefix_may_not_delete(client, p4_delete_world) -> None:
    client.force_login(p4_delete_world["a_admin"])
    response = _delete(client, p4_delete_world)
    assert response.status_code == 403
    assert "grants your projects no repository prefix to delete in: only Admins" in response.content.decode()
    assert _still_there(p4_delete_world)
    assert not AuditEntry.objects.filter(action__startswith="registry.delete").exists()


def test_a_repository_outside_the_projects_prefix_is_refused_saying_which_is_allowed(
    client, p4_delete_world
) -> None:
    world = p4_delete_world
    # "scratch/portal-x" is not under "scratch/portal" (whole path segments only).
    lookalike = world["repository"].rsplit("-", 1)[0]
    for prefix in ("team-a", lookalike):
        DeletePrefix.objects.create(registry=world["registry"], project=world["a"], prefix=prefix)
    client.force_login(world["a_admin"])
    response = _delete(client, world)
    assert response.status_code == 403
    text = response.content.decode()
    assert "you may delete only in repositories under" in text and "team-a/" in text
    assert _still_there(world)
    # The page offers no delete button either.
    page = client.get(reverse("registry:repository", args=[world["registry"].pk, world["repository"]]))
    assert page.context["can_delete"] is False


def test_another_projects_prefix_does_not_open_it_to_b(client, p4_delete_world) -> None:
    world = p4_delete_world
    DeletePrefix.objects.create(registry=world["registry"], project=world["a"], prefix="scratch")
    client.force_login(world["b_admin"])
    assert _delete(client, world).status_code == 403
    assert _still_there(world)


def test_inside_the_granted_prefix_the_delete_goes_through_and_is_audited(client, p4_delete_world) -> None:
    world = p4_delete_world
    DeletePrefix.objects.create(registry=world["registry"], project=world["a"], prefix=world["repository"])
    client.force_login(world["a_admin"])
    assert _delete(client, world).status_code == 302
    with pytest.raises(NotFound):
        _still_there(world)
    entry = AuditEntry.objects.get(action="registry.delete_artifact")
    assert entry.project == world["a"] and entry.before["repository"] == world["repository"]
