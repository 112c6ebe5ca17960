"""Usable in a narrow window (800 px): long values wrap and can be copied, tables scroll in
their own box, a badge's label and number never touch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.layout.conftest import FINGERPRINT, World

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
CSS = (REPO / "static" / "portal" / "portal.css").read_text()


def test_every_table_sits_in_a_scrolling_box() -> None:
    bare = [
        f"{path.relative_to(TEMPLATES)}: {match[0][:60]}"
        for path in TEMPLATES.rglob("*.html")
        for match in re.finditer(r"(?<!<div class=\"table-scroll\">)<table\b[^>]*>", path.read_text())
    ]
    assert bare == []
    assert re.search(r"\.table-scroll \{[^}]*overflow-x: auto", CSS)


def test_long_values_wrap_anywhere() -> None:
    assert re.search(r"\.mono-wrap \{[^}]*overflow-wrap: anywhere", CSS)


@pytest.mark.django_db
def test_fingerprints_wrap_and_have_a_copy_button(client, world: World) -> None:
    client.force_login(world.admin)
    pages = {
        reverse("hosts:vcenters"): f"vcenter-thumbprint-{world.vcenter.pk}",
        reverse("hosts:host", args=[world.host.pk]): f"host-fingerprint-{world.host.pk}",
    }
    for url, element in pages.items():
        html = client.get(url).content.decode()
        assert re.search(
            rf'<code class="[^"]*\bmono-wrap\b[^"]*" id="{element}">{FINGERPRINT}</code>', html
        ), url
        assert f'data-copy="#{element}"' in html, url


@pytest.mark.django_db
def test_the_host_page_keeps_long_values_and_engine_events_inside(client, world: World) -> None:
    client.force_login(world.admin)
    html = client.get(reverse("hosts:host", args=[world.host.pk])).content.decode()
    assert f'<code class="mono-wrap">{world.host.docker_url}</code>' in html
    assert '<div class="table-scroll"><table class="table table-compact" id="engine-events">' in html
    assert re.search(r"#engine-events \{[^}]*table-layout: fixed", CSS)


@pytest.mark.django_db
def test_a_badge_keeps_a_space_between_its_label_and_its_number(client, world: World) -> None:
    client.force_login(world.admin)
    html = client.get(reverse("hosts:vsphere")).content.decode()
    # A badge is a flex box (Clarity): an ordinary space before its <strong> collapses.
    badges = re.findall(r'<span class="badge[^"]*">([^<]*)<strong', html)
    assert badges and all(label.endswith("&nbsp;") for label in badges), badges
    assert re.search(r"\.badge \{[^}]*gap:", CSS)
