"""Browsing the lab's real registries (anonymous, Basic, token) through the portal's pages."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.urls import reverse

from registry.clients import http
from registry.images import PlatformSize
from registry.models import Registry
from tests.lab import seed

SEED = seed.describe()
KINDS = ["anonymous", "basic", "token"]


def repo_url(registry: Registry, repository: str, **query: str) -> str:
    url = reverse("registry:repository", args=[registry.pk, repository])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def tag_url(registry: Registry, repository: str, reference: str) -> str:
    return reverse("registry:tag", args=[registry.pk, repository, reference])


@pytest.mark.parametrize("kind", KINDS)
def test_catalog_pages_with_the_link_header(
    client, viewer, lab_registry: Callable[[str], Registry], kind: str
) -> None:
    registry = lab_registry(kind)
    client.force_login(viewer)
    seen: list[str] = []
    url = reverse("registry:registry", args=[registry.pk])
    for _ in range(10):
        response = client.get(url)
        assert response.status_code == 200, response.content[:500]
        page = re.findall(r'href="/registries/\d+/r/([^"]+)/"', response.content.decode())
        seen += page
        following = re.search(r'rel="next" href="([^"]+)"', response.content.decode())
        if not following:
            break
        url = reverse("registry:registry", args=[registry.pk]) + following.group(1).replace("&amp;", "&")
    # Delete tests push repositories of their own (scratch/portal-...) into the shared lab.
    assert [name for name in seen if not name.startswith("scratch/portal-")] == sorted(SEED.repositories)


def test_search_finds_repositories_by_name(client, viewer, lab_registry) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("anonymous")
    client.force_login(viewer)
    response = client.get(reverse("registry:registry", args=[registry.pk]), {"q": "app/API"})
    assert response.status_code == 200
    assert response.context["repositories"] == [("team-a/app/api", True)]


@pytest.mark.parametrize("kind", KINDS)
def test_multi_platform_index_shows_both_platforms_with_layers_and_config(
    client, viewer, lab_registry: Callable[[str], Registry], kind: str
) -> None:
    registry = lab_registry(kind)
    client.force_login(viewer)
    repository, tag = SEED.multi_arch
    response = client.get(tag_url(registry, repository, tag))
    assert response.status_code == 200, response.content[:500]
    details = response.context["details"]
    assert details.digest == SEED.digest(repository, tag)
    assert details.media_type == seed.OCI_INDEX
    assert sorted(details.platforms) == ["linux/amd64", "linux/arm64"]
    for image in details.images:
        assert image.layers and all(layer.size > 0 for layer in image.layers)
        assert image.labels["org.opencontainers.image.vendor"] == "VMware"
        assert image.env_names == ["PATH"]
    # The other tag on the same digest, and a pull line the deploy flow can take over.
    assert response.context["shared_tags"] == ["latest"]
    assert response.context["pull_reference"] == f"{registry.host}/{repository}:{tag}"
    html = response.content.decode()
    assert "linux/arm64" in html and "docker pull " in html


def test_docker_manifest_list_and_config_details(client, viewer, lab_registry) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("anonymous")
    client.force_login(viewer)
    repository, tag = SEED.manifest_list
    details = client.get(tag_url(registry, repository, tag)).context["details"]
    assert details.media_type == seed.DOCKER_LIST
    assert sorted(details.platforms) == ["linux/amd64", "linux/arm64"]

    repository, tag = SEED.oci_manifest
    details = client.get(tag_url(registry, repository, tag)).context["details"]
    assert details.media_type == seed.OCI_MANIFEST
    image = details.images[0]
    assert image.entrypoint == ["/docker-entrypoint.sh"]
    assert image.cmd == ["nginx", "-g", "daemon off;"]
    assert image.ports == ["443/tcp", "80/tcp"]
    assert "NGINX_VERSION" in image.env_names
    assert image.annotations["org.opencontainers.image.version"] == "1.25"
    assert details.sizes == [PlatformSize("", image.size)] and image.size > 0


def test_thousand_tag_repository_pages_from_one_tag_list(  # type: ignore[no-untyped-def]
    client, viewer, lab_registry, django_assert_max_num_queries
) -> None:
    registry = lab_registry("token")
    client.force_login(viewer)
    before = http.requests_made
    response = client.get(repo_url(registry, SEED.many_tags_repo))
    assert response.status_code == 200
    rows = response.context["rows"]
    assert response.context["tag_count"] == len(SEED.tags[SEED.many_tags_repo]) > 1000
    assert [row.tag for row in rows[:3]] == ["build-1050", "build-1049", "build-1048"]
    assert all(row.digest and row.platforms == ["linux/amd64"] and row.created for row in rows)
    cold = http.requests_made - before
    # One tag list and per tag on the page a manifest and a config (plus tokens and 401s):
    # nowhere near one request per tag of the repository.
    assert cold <= 1 + 2 * len(rows) + 10, cold

    before = http.requests_made
    with django_assert_max_num_queries(6):
        second = client.get(repo_url(registry, SEED.many_tags_repo, page="2"))
    assert [row.tag for row in second.context["rows"][:1]] == [f"build-{1050 - len(rows)}"]
    assert http.requests_made - before <= 2 * len(rows) + 2, "page 2 reuses the cached tag list"


def test_newest_first_sorts_by_created_date(client, viewer, lab_registry) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("anonymous")
    client.force_login(viewer)
    # The table's own (htmx) request: the full page shows a placeholder until the order is known.
    response = client.get(repo_url(registry, "library/photon", sort="newest"), HTTP_HX_REQUEST="true")
    tags = [row.tag for row in response.context["rows"]]
    created = [row.created for row in response.context["rows"]]
    assert created == sorted(created, reverse=True)
    assert tags[-1] == "3.0"  # the oldest
    by_version = [row.tag for row in client.get(repo_url(registry, "library/photon")).context["rows"]]
    assert by_version == ["latest", "5.0", "4.0", "3.0"]


def test_a_second_view_is_served_from_the_cache_and_refresh_asks_again(  # type: ignore[no-untyped-def]
    client, viewer, lab_registry
) -> None:
    registry = lab_registry("basic")
    client.force_login(viewer)
    url = tag_url(registry, *SEED.multi_arch)
    assert client.get(url).status_code == 200
    before = http.requests_made
    assert client.get(url).status_code == 200
    assert http.requests_made == before, "the registry was asked again within the cache lifetime"
    assert client.get(url + "?refresh=1").status_code == 200
    assert http.requests_made > before


def test_unknown_repository_and_bad_names_are_clear_404s(client, viewer, lab_registry) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("anonymous")
    client.force_login(viewer)
    response = client.get(repo_url(registry, "library/nope"))
    assert response.status_code == 404
    assert b"not found" in response.content
    response = client.get(tag_url(registry, "library/photon", "nope"))
    assert response.status_code == 404
    # A name that is not a repository name never becomes a registry URL.
    before = http.requests_made
    response = client.get(repo_url(registry, "library/..%2F..%2Fetc"))
    assert response.status_code == 404
    assert http.requests_made == before
