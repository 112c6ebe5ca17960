"""What the change flow refuses: a person's request (ChangeError, with each refused
setting as a Problem) and a step of applying one host (StepFailed)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from portal.refused import Refused


class ChangeError(Refused):
    """Something a person asked of a change that cannot be done (bad settings, wrong state):
    a ``Refused``, so the UI and the API say it alike.

    ``problems`` lists each refused setting when the settings are at fault.
    """

    def __init__(
        self, message: str, problems: Iterable[Problem] = (), *, field: str = "", status: int = 409
    ) -> None:
        problems = list(problems)
        super().__init__(message, field=field, status=status, details=[p.message for p in problems])
        self.problems = problems


@dataclass(frozen=True)
class Problem:
    """One refused setting: its section (``sshd``...), its key when known, and why."""

    section: str
    key: str
    message: str


class StepFailed(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason
