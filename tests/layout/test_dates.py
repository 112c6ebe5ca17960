"""One way to show a moment: every page writes it the same short way, the full time with its
zone in a tooltip, and no template formats a time itself."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from django.urls import reverse

from portal.templatetags.dates import when
from tests.layout.conftest import World

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
#: <time datetime="ISO" title="2026-12-05 12:00:03 UTC">2026-12-05 12:00</time>
TIME = re.compile(r"<time\b([^>]*)>([^<]*)</time>")
SHORT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
FULL = re.compile(r'title="\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [A-Z+\-0-9]+"')


def pages(world: World) -> dict[str, str]:
    return {
        "audit": reverse("audit"),
        "events": reverse("events"),
        "changes and drift": reverse("hosts:changes"),
        "host": reverse("hosts:host", args=[world.host.pk]),
        "vCenters": reverse("hosts:vcenters"),
        "VM": reverse("hosts:vm", args=[world.vm.pk]),
        "provisioning": reverse("hosts:provision"),
        "provisioning request": reverse("hosts:provision_request", args=[world.request.pk]),
        "API tokens": reverse("api-tokens"),
        "my work": reverse("work"),
    }


@pytest.mark.django_db
def test_every_page_with_a_date_shows_it_one_way_with_the_full_time_in_a_tooltip(
    client, world: World
) -> None:
    client.force_login(world.admin)
    for what, url in pages(world).items():
        html = client.get(url).content.decode()
        times = TIME.findall(html)
        assert times, f"{what} ({url}) shows no <time>"
        for attributes, text in times:
            assert SHORT.fullmatch(text), f"{what}: {text!r} is not the one short format"
            assert FULL.search(attributes), f"{what}: <time{attributes}> has no full time as its title"
            assert 'datetime="' in attributes


def test_no_template_formats_a_time_itself() -> None:
    offenders = [
        f"{path.relative_to(TEMPLATES)}: {word}"
        for path in TEMPLATES.rglob("*.html")
        for word in ("|date", "|time:", "timesince", "timeuntil", "naturaltime", "naturalday", "isoformat")
        if word in path.read_text()
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2026, 12, 5, 12, 0, 3, tzinfo=datetime.UTC),
        "2026-12-05T12:00:03.123456789Z",  # a registry's nine digits
        1796472003,  # a Docker engine's epoch seconds
        "1796472003",
    ],
    ids=["datetime", "registry text", "epoch", "epoch text"],
)
def test_a_moment_from_anywhere_reads_the_same(settings, value: object) -> None:
    settings.TIME_ZONE = "UTC"
    html = str(when(value))
    assert html.startswith('<time datetime="2026-12-05T12:00:03')
    assert html.endswith('title="2026-12-05 12:00:03 UTC">2026-12-05 12:00</time>')


def test_what_is_not_a_time_is_shown_as_it_is_and_nothing_as_nothing() -> None:
    assert when(None) == "" and when("") == ""
    assert when("<yesterday>") == "<yesterday>"  # escaped by the template, not marked safe
