"""``Refused``: the one way a service function says no.

Service functions (one per action, in each area's ``services`` module) check the rules
and raise ``Refused`` with the field the refusal is about (``""`` when it is about the
whole request) and a sentence for a person. The UI shows the message (on the field
when there is one); the API answers it as ``{"detail": message}`` or, with a field,
``{field: [message]}``. Both get it from the same call, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable


class Refused(Exception):
    """The action is not done; nothing was changed."""

    def __init__(
        self, message: str, *, field: str = "", status: int = 409, details: Iterable[str] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        #: Each sentence, when the refusal has several (every refused setting of a profile).
        self.details = list(details)
        #: The HTTP status the API answers with: 409 (not in this state), 403 (not allowed),
        #: 400 (bad input), 502 (a peer did not answer).
        self.status = status

    def __str__(self) -> str:
        return self.message
