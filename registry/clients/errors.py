"""What can go wrong talking to a registry, as messages a person can act on.

Every failure a client meets (refused connection, timeout, wrong password, a body
that is not what the API promises) becomes a RegistryError with a sentence for
the page; views show ``str(error)`` and never a traceback.
"""

from __future__ import annotations


class RegistryError(Exception):
    """A registry could not answer what was asked; ``str()`` is for people."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Unreachable(RegistryError):
    """No answer: refused, DNS, TLS failure, timeout."""


class AuthenticationFailed(RegistryError):
    """The credentials were refused (by the registry or its token service)."""


class AccessDenied(RegistryError):
    """Signed in, but not allowed to do this."""


class NotFound(RegistryError):
    """The repository, tag or digest does not exist (any more)."""


class DeleteDisabled(RegistryError):
    """The registry does not allow deletes (distribution's ``storage.delete.enabled: false``)."""


class BadResponse(RegistryError):
    """The registry answered, but not with what its API promises (HTML, truncated, too big)."""
