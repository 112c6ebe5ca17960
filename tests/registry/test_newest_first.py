"""Newest first on a 1,050-tag repository: a placeholder at once, dates read once, every page
served from the cached order."""

from __future__ import annotations

from django.urls import reverse

from registry.browse import Browser
from registry.clients import http
from registry.models import Registry
from tests.lab import seed

SEED = seed.describe()
MANY = SEED.many_tags_repo
PAGE = 50


def repo_url(registry: Registry, **query: str) -> str:
    url = reverse("registry:repository", args=[registry.pk, MANY])
    return url + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def test_a_placeholder_then_the_order_computed_once_for_every_page(client, viewer, lab_registry) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("token")
    client.force_login(viewer)

    before = http.requests_made
    shell = client.get(repo_url(registry, sort="newest"))
    assert shell.status_code == 200
    html = shell.content.decode()
    # Never a blank wait: the page answers at once and its table asks for itself.
    assert "Sorting 1,050 tags by date…" in html
    assert 'hx-trigger="load"' in html and "hx-indicator" in html
    assert shell.context["rows"] == []
    assert http.requests_made - before <= 4, "the page did not wait for every tag's date"

    table = client.get(repo_url(registry, sort="newest", page="1"), HTTP_HX_REQUEST="true")
    assert table.status_code == 200
    rows = table.context["rows"]
    assert [row.tag for row in rows[:3]] == ["build-1050", "build-1049", "build-1048"]
    assert [row.created for row in rows] == sorted((row.created for row in rows), reverse=True)

    # The order is kept, not the 1,050 tags' details: with those dropped, a later page
    # still reads only its own tags.
    with Browser(registry) as browser:
        for tag in SEED.tags[MANY]:
            browser.forget("tag", MANY, tag)
    for page in (2, 3):
        before = http.requests_made
        response = client.get(repo_url(registry, sort="newest", page=str(page)))
        assert "Sorting" not in response.content.decode(), "a cached order shows no placeholder"
        tags = [row.tag for row in response.context["rows"]]
        assert tags[0] == f"build-{1050 - (page - 1) * PAGE}" and len(tags) == PAGE
        assert http.requests_made - before <= 2 * PAGE + 4, http.requests_made - before


def test_refresh_orders_the_tags_anew(client, viewer, lab_registry) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("anonymous")
    client.force_login(viewer)
    url = reverse("registry:repository", args=[registry.pk, "library/photon"])
    client.get(url, {"sort": "newest"}, HTTP_HX_REQUEST="true")
    assert "Sorting" not in client.get(url, {"sort": "newest"}).content.decode()
    again = client.get(url, {"sort": "newest", "refresh": "1"}).content.decode()
    assert "Sorting 4 tags by date…" in again and "refresh=1" in again


def test_dating_stops_at_the_deadline_and_says_what_it_could_not_date(  # type: ignore[no-untyped-def]
    client, viewer, lab_registry, settings
) -> None:
    registry = lab_registry("anonymous")
    client.force_login(viewer)
    assert client.get(repo_url(registry)).status_code == 200  # the tag list, read and cached
    # Far too short to read 1,050 manifests and configs: the order is partial, not a hang.
    settings.REGISTRY_DEADLINE = 0.2
    response = client.get(repo_url(registry, sort="newest"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    listing = response.context["listing"]
    assert 0 < listing.undated <= 1050
    assert f"{listing.undated:,} without a date come last." in response.content.decode()
    with Browser(registry) as browser:
        order = browser.cached_newest_order(MANY, list(SEED.tags[MANY]))
    assert order is not None and not order.complete
