"""The container page's CPU and memory chart has axes with units: percent on the left,
MiB on the right, and time along the bottom."""

from __future__ import annotations

import re
from pathlib import Path

from django.template.loader import render_to_string

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_the_chart_draws_its_axes_with_their_units() -> None:
    svg = render_to_string(
        "hosts/fleet/stats_chart.html", {"stats_topic": "project:1:host:1:container:x:stats"}
    )
    for axis in ("stats-axis-time", "stats-axis-cpu", "stats-axis-mem"):
        assert re.search(rf'<line class="stats-axis {axis}"', svg), axis
    assert 'id="stats-cpu-top">100 %</text>' in svg and ">0 %</text>" in svg
    assert 'id="stats-mem-top">' in svg and ">0 MiB</text>" in svg
    assert ">now</text>" in svg and "time (one reading a second)" in svg
    # What the live script draws into and what the walkthrough finds stay where they were.
    for element in (
        'id="stats-chart"',
        'data-topic="project:1:host:1:container:x:stats"',
        'id="stats-cpu"',
        'id="stats-mem"',
    ):
        assert element in svg


def test_the_container_page_shows_that_chart() -> None:
    page = (TEMPLATES / "hosts" / "fleet" / "container_detail.html").read_text()
    assert '{% include "hosts/fleet/stats_chart.html" %}' in page
