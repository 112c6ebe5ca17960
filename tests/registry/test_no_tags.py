"""A repository the catalog still lists after every tag was deleted: its page says so (200)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from registry.clients.distribution import DistributionClient
from registry.clients.http import Transport


def test_a_repository_whose_tags_were_deleted_says_it_has_none(  # type: ignore[no-untyped-def]
    client, viewer, lab_registry, lab_registries: list[dict[str, Any]], scratch_images
) -> None:
    info = next(r for r in lab_registries if r["name"] == "anonymous")
    repository, digests = scratch_images(info)
    registry = lab_registry("anonymous")
    # Deleted behind the portal's back, through the registry's own API.
    direct = DistributionClient(Transport(str(info["url"])))
    for digest in set(digests.values()):
        direct.delete(repository, digest)
    assert repository in direct.repositories(), "the catalog still names it"

    client.force_login(viewer)
    response = client.get(reverse("registry:repository", args=[registry.pk, repository]))
    assert response.status_code == 200, response.content.decode()[-800:]
    assert (
        "This repository has no tags (they were deleted); it may still be listed in the catalog "
        "until the registry is garbage-collected." in response.content.decode()
    )
    catalog = client.get(reverse("registry:registry", args=[registry.pk]), {"q": repository})
    assert "no tags" in catalog.content.decode()
    answer = client.get(f"/api/registries/{registry.pk}/tags/", {"repository": repository})
    assert answer.status_code == 200 and answer.json()["count"] == 0
    # A repository the catalog does not name is still a 404.
    missing = client.get(reverse("registry:repository", args=[registry.pk, "scratch/never-pushed"]))
    assert missing.status_code == 404
