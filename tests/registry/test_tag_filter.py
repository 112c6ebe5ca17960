"""A repository's tags filtered by name (server side): the page's htmx box, paging, sort and the API."""

from __future__ import annotations

import re

from django.urls import reverse

from registry.models import Registry
from tests.lab import seed

SEED = seed.describe()
MANY = SEED.many_tags_repo
#: build-10, build-100..109, build-1000..1050.
MATCHING = sorted((t for t in SEED.tags[MANY] if "build-10" in t), key=lambda t: -int(t.split("-")[1]))


def repo_url(registry: Registry, repository: str) -> str:
    return reverse("registry:repository", args=[registry.pk, repository])


def test_filter_box_narrows_the_tags_with_paging_kept(client, viewer, lab_registry) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("anonymous")
    client.force_login(viewer)
    page = client.get(repo_url(registry, MANY))
    html = page.content.decode()
    box = re.search(r'<input type="search" name="q"[^>]*>', html, re.S)
    assert box and 'hx-get="' in box.group(0) and "delay:" in box.group(0), "a debounced htmx box"

    first = client.get(repo_url(registry, MANY), {"q": "BUILD-10"})
    assert first.status_code == 200
    assert [row.tag for row in first.context["rows"]] == MATCHING[:50]
    text = first.content.decode()
    assert f"{len(MATCHING)} of 1,050 tags match “BUILD-10”" in text
    following = re.search(r'rel="next" href="([^"]+)"', text)
    assert following and "q=BUILD-10" in following.group(1)
    second = client.get(repo_url(registry, MANY) + following.group(1).replace("&amp;", "&"))
    assert [row.tag for row in second.context["rows"]] == MATCHING[50:]


def test_htmx_asks_for_the_table_alone(client, viewer, lab_registry) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("anonymous")
    client.force_login(viewer)
    response = client.get(repo_url(registry, "library/photon"), {"q": "0"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode().strip()
    assert html.startswith('<div id="tag-table">') and "<html" not in html
    assert [row.tag for row in response.context["rows"]] == ["5.0", "4.0", "3.0"]


def test_filter_with_newest_first_and_odd_text(client, viewer, lab_registry) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("anonymous")
    client.force_login(viewer)
    rows = client.get(
        repo_url(registry, "library/photon"), {"q": ".0", "sort": "newest"}, HTTP_HX_REQUEST="true"
    ).context["rows"]
    assert [row.tag for row in rows] == ["5.0", "4.0", "3.0"]
    assert [row.created for row in rows] == sorted((row.created for row in rows), reverse=True)

    odd = client.get(repo_url(registry, "library/photon"), {"q": '<script>"x'})
    assert odd.status_code == 200
    html = odd.content.decode()
    assert "<script>&quot;x" not in html and '<script>"x' not in html
    assert "No tags match “&lt;script&gt;&quot;x”." in html


def test_the_api_filters_through_the_same_list(client, viewer, lab_registry) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("anonymous")
    client.force_login(viewer)
    url = f"/api/registries/{registry.pk}/tags/"
    answer = client.get(url, {"repository": MANY, "q": "build-10", "page_size": 50, "page": 2})
    assert answer.status_code == 200, answer.content[:300]
    data = answer.json()
    assert data["count"] == len(MATCHING)
    assert [row["tag"] for row in data["results"]] == MATCHING[50:]
    newest = client.get(url, {"repository": "library/photon", "sort": "newest"}).json()
    assert newest["results"][-1]["tag"] == "3.0"
    assert client.get(url, {"repository": "library/photon", "sort": "oldest"}).status_code == 400
