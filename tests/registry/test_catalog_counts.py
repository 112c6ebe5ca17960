"""The catalog says how many tags each repository has (distribution: for the page shown;
Harbor: its artifact count and last push, from its own list)."""

from __future__ import annotations

import re

from django.urls import reverse

from registry.clients import http
from tests.lab import seed

SEED = seed.describe()


def count_cell(html: str, repository: str) -> str:
    found = re.search(rf'>{re.escape(repository)}</a></td>\s*<td class="tag-count">(.*?)</td>', html, re.S)
    assert found, repository
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def test_distribution_catalog_counts_the_tags_of_the_page(client, viewer, lab_registry) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("basic")
    client.force_login(viewer)
    url = reverse("registry:registry", args=[registry.pk])
    response = client.get(url, {"q": "library/"})
    html = response.content.decode()
    assert "<th>Tags</th>" in html
    assert count_cell(html, SEED.many_tags_repo) == "1,050"
    assert count_cell(html, "library/photon") == str(len(SEED.tags["library/photon"]))

    before = http.requests_made
    first = client.get(url)
    shown = len(first.context["catalog_rows"])
    assert all(count for _, _, count in first.context["catalog_rows"])
    # A tag list per repository of this page (plus the catalog and sign-in), no more.
    assert http.requests_made - before <= shown + 6
    before = http.requests_made
    client.get(url)
    assert http.requests_made == before, "the counts are cached"


def test_harbor_repositories_show_artifact_count_and_last_push(client, viewer, harbor_registry) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    response = client.get(reverse("registry:harbor_project", args=[harbor_registry.pk, "team-a"]))
    html = response.content.decode()
    (row,) = response.context["repositories"]
    assert "<th>Artifacts</th>" in html and '<th class="left">Last push</th>' in html
    pushed = row["update_time"].replace("T", " ")[:16]
    # The push time as every page shows a time (the ``when`` filter: minutes, the full time as a tooltip).
    assert re.search(
        rf"<td>{row['artifact_count']}</td>.*?<td class=\"left\"><time [^>]*>{pushed}</time></td>", html, re.S
    )
