"""Maintenance windows: open on their weekday (or every day) at a UTC start for a duration that
may run past midnight, and Sunday's into Monday; no window means any time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time

import pytest

from hosts.models import MaintenanceWindow
from hosts.patches import windows
from portal.models import Project

# 2026-12-07 is a Monday.
MONDAY = datetime(2026, 12, 7, tzinfo=UTC)


@dataclass
class W:
    weekday: int | None
    start: time
    duration_minutes: int


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Day 7 is Monday 7 December 2026, 13 Sunday, 14 the next Monday."""
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def test_no_window_means_any_time() -> None:
    assert windows.opening([], MONDAY) is None
    assert windows.is_open([], MONDAY)


def test_a_daily_window_crossing_midnight_is_open_on_both_sides() -> None:
    nightly = [W(None, time(22, 0), 180)]
    assert windows.opening(nightly, at(7, 23, 30)) == at(7, 23, 30)
    assert windows.opening(nightly, at(8, 0, 30)) == at(8, 0, 30)  # yesterday's, past midnight
    assert windows.opening(nightly, at(8, 1, 0)) == at(8, 22, 0)  # closed on the minute
    assert windows.is_open(nightly, at(8, 0, 59)) and not windows.is_open(nightly, at(8, 1, 0))
    assert windows.opening(nightly, at(7, 12, 0)) == at(7, 22, 0)


def test_sundays_window_runs_into_monday_and_the_next_opening_wraps_the_week() -> None:
    sunday = [W(6, time(23, 0), 120)]
    assert windows.is_open(sunday, at(14, 0, 30))  # Monday 00:30, opened Sunday 23:00
    assert windows.opening(sunday, at(14, 1, 0)) == at(20, 23, 0)  # the next Sunday
    assert windows.opening(sunday, at(12, 9, 0)) == at(13, 23, 0)  # Saturday: tomorrow night
    assert not windows.is_open(sunday, at(13, 22, 59))


def test_the_earliest_of_several_windows_opens_first() -> None:
    found = [W(2, time(3, 0), 60), W(0, time(20, 0), 30), W(None, time(12, 0), 1440)]
    assert windows.opening(found[:2], at(7, 10, 0)) == at(7, 20, 0)
    assert windows.opening(found[:1], at(7, 10, 0)) == at(9, 3, 0)
    assert windows.is_open(found, at(10, 11, 0))  # a whole day from noon: always open


@pytest.mark.django_db
def test_a_projects_rows_decide_and_no_row_is_any_time() -> None:
    project = Project.objects.create(name="windows")
    assert windows.next_opening(project.pk, MONDAY) is None and windows.inside(project.pk, MONDAY)
    MaintenanceWindow.objects.create(project=project, weekday=6, start=time(23, 0), duration_minutes=120)
    assert windows.next_opening(project.pk, at(7, 10, 0)) == at(13, 23, 0)
    assert not windows.inside(project.pk, at(7, 10, 0))
    assert windows.inside(project.pk, at(14, 0, 30))
    other = Project.objects.create(name="no windows")
    assert windows.inside(other.pk, at(7, 10, 0))
