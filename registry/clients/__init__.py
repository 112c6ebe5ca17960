"""One client per registry kind (``distribution``, ``harbor``) over a shared careful transport (``http``)."""

from __future__ import annotations

from .errors import (
    AccessDenied,
    AuthenticationFailed,
    BadResponse,
    DeleteDisabled,
    NotFound,
    RegistryError,
    Unreachable,
)

__all__ = [
    "AccessDenied",
    "AuthenticationFailed",
    "BadResponse",
    "DeleteDisabled",
    "NotFound",
    "RegistryError",
    "Unreachable",
]
