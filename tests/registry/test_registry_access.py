"""Who sees a registry: members of the projects it is shared with; Viewers see but do not delete."""

from __future__ import annotations

import pytest
from django.urls import reverse

from registry.models import Registry


@pytest.fixture
def shared(project) -> Registry:  # type: ignore[no-untyped-def]
    # Nothing listens on port 9: access is decided before the registry is asked anything.
    registry = Registry.objects.create(name="team-registry", url="http://127.0.0.1:9")
    registry.projects.set([project])
    return registry


def pages(registry: Registry) -> list[str]:
    return [
        reverse("registry:registry", args=[registry.pk]),
        reverse("registry:repository", args=[registry.pk, "library/photon"]),
        reverse("registry:tag", args=[registry.pk, "library/photon", "5.0"]),
        reverse("registry:delete", args=[registry.pk, "library/photon"]) + "?reference=5.0",
        reverse("registry:harbor_project", args=[registry.pk, "library"]),
    ]


def test_an_outsider_sees_nothing_of_it(client, outsider, shared: Registry) -> None:  # type: ignore[no-untyped-def]
    client.force_login(outsider)
    index = client.get(reverse("registry:index"))
    assert index.status_code == 200 and b"team-registry" not in index.content
    for url in pages(shared):
        assert client.get(url).status_code == 404, url
    response = client.post(
        reverse("registry:delete", args=[shared.pk, "library/photon"]), {"reference": "5.0", "digest": "x"}
    )
    assert response.status_code == 404


def test_a_viewer_sees_it_but_cannot_delete(client, viewer, shared: Registry) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    assert b"team-registry" in client.get(reverse("registry:index")).content
    # The registry itself is unreachable: a clear page, not a 403 or 404.
    assert client.get(reverse("registry:registry", args=[shared.pk])).status_code == 502
    delete = reverse("registry:delete", args=[shared.pk, "library/photon"])
    assert client.get(delete + "?reference=5.0").status_code == 403
    assert client.post(delete, {"reference": "5.0", "digest": "sha256:" + "0" * 64}).status_code == 403


def test_a_registry_shared_with_nobody_is_for_admins_only(client, viewer, admin) -> None:  # type: ignore[no-untyped-def]
    registry = Registry.objects.create(name="private", url="http://127.0.0.1:9")
    client.force_login(viewer)
    assert client.get(reverse("registry:registry", args=[registry.pk])).status_code == 404
    client.force_login(admin)
    assert client.get(reverse("registry:registry", args=[registry.pk])).status_code == 502


def test_deleting_needs_csrf(project_admin, shared: Registry) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(project_admin)
    response = client.post(
        reverse("registry:delete", args=[shared.pk, "library/photon"]), {"reference": "5.0", "digest": "x"}
    )
    assert response.status_code == 403
