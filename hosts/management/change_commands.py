"""What the scripted change commands share (``manage.py change``, ``rotate_credentials``):
the exit codes, the acting user, and waiting for an apply that runs in tasks."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser

from hosts.models.changes import Change, ChangeStatus, RunState

#: Exit codes: 0 done (planned, or applied everywhere); 1 a host failed, was refused or
#: unreachable, or the apply did not finish in time; 2 bad input or not allowed;
#: 3 planned, but waiting for a Project admin's approval before it can be applied.
FAILED, REFUSED, AWAITING = 1, 2, 3
BAD_STATES = {RunState.FAILED, RunState.ROLLED_BACK, RunState.UNREACHABLE, RunState.REFUSED}
POLL_SECONDS = 0.5
_BUSY = {RunState.QUEUED, RunState.APPLYING}


def add_acting_arguments(parser: CommandParser) -> None:
    parser.add_argument("--user", required=True, help="act as this portal user (their role decides)")
    parser.add_argument("--apply", action="store_true", help="apply after planning, and wait for it")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the apply")


def acting_user(username: str) -> Any:
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"No active user {username!r}.", returncode=REFUSED)
    return user


def wait_settled(changes: Iterable[Change], timeout: float) -> bool:
    """Wait until every run of ``changes`` has ended and each change is summed up (the
    last run settles its change just after its own end); False if ``timeout`` passed."""
    pks = [c.pk for c in changes]
    deadline = time.monotonic() + timeout
    while (
        Change.objects.filter(pk__in=pks, status=ChangeStatus.APPLYING).exists()
        or Change.objects.filter(pk__in=pks, runs__state__in=_BUSY).exists()
    ):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)  # the apply runs in tasks; the database is where they report
    return True
