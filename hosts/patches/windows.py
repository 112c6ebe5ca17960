"""A project's maintenance windows: when its hosts may be patched.

A window opens on its weekday (or every day) at its start, in UTC, and stays open for its
duration (up to a day), so it may run past midnight into the next day, and Sunday's into
Monday. A project with no window may be patched at any time. The functions below read
the rows and nothing else: the caller gives ``now`` (tests give any moment they like).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Protocol

from hosts.models import MaintenanceWindow


class Window(Protocol):
    """What is read of a window (a MaintenanceWindow row, or anything shaped like one)."""

    weekday: int | None
    start: time
    duration_minutes: int


def _openings(window: Window, now: datetime) -> Iterator[tuple[datetime, datetime]]:
    """(opens, closes) of ``window`` on the days around ``now``: from two days before (a
    window opened yesterday may still be open) to eight after (every weekday comes once)."""
    today = now.astimezone(UTC).date()
    for offset in range(-2, 9):
        day = today + timedelta(days=offset)
        if window.weekday is not None and day.weekday() != window.weekday:
            continue
        opens = datetime.combine(day, window.start, tzinfo=UTC)
        yield opens, opens + timedelta(minutes=window.duration_minutes)


def opening(windows: Iterable[Window], now: datetime) -> datetime | None:
    """``now`` when a window is open now, else the next time one opens; None without windows."""
    found: datetime | None = None
    for window in windows:
        for opens, closes in _openings(window, now):
            if opens <= now < closes:
                return now
            if opens > now and (found is None or opens < found):
                found = opens
    return found


def is_open(windows: Iterable[Window], now: datetime) -> bool:
    """Is ``now`` inside one of ``windows`` (no windows: always)?"""
    windows = list(windows)
    return not windows or opening(windows, now) == now


def _rows(project_id: int) -> list[MaintenanceWindow]:
    return list(MaintenanceWindow.objects.filter(project_id=project_id))


def next_opening(project_id: int, now: datetime) -> datetime | None:
    """None: the project has no windows (any time will do); ``now`` when inside one now;
    otherwise when the next one opens."""
    return opening(_rows(project_id), now)


def inside(project_id: int, now: datetime) -> bool:
    return is_open(_rows(project_id), now)
