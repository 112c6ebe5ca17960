"""The API's defaults, named in settings.REST_FRAMEWORK. Kept apart from portal.api:
DRF imports these while it loads, before portal.api's views can be imported."""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import pagination, permissions
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request

from . import access


class SignedIn(permissions.BasePermission):
    """The default gate: a signed-in, active user, and no change through a read-only
    token. Each view then asks portal.access (which honours a token's project)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not access.is_signed_in(request.user):
            return False
        scope = access.token_scope(request.user)
        if scope is not None and scope.read_only and request.method not in permissions.SAFE_METHODS:
            raise PermissionDenied(
                f"This API token is read-only: it cannot {request.method}. Use a read-write token."
            )
        return True


class Pages(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class StrictFilters:
    """Query parameters a list accepts; anything else is a 400 that names it."""

    filters: ClassVar[dict[str, str]] = {}
    PAGING = frozenset({"page", "page_size", "format"})

    def filter_params(self, request: Request) -> dict[str, str]:
        unknown = sorted(set(request.query_params) - set(self.filters) - self.PAGING)
        if unknown:
            known = ", ".join(sorted(self.filters)) or "none"
            raise ValidationError({"detail": f"Unknown filter(s): {', '.join(unknown)}. Known: {known}."})
        # PostgreSQL refuses NUL in text: a 400 here, not a database error later.
        if any("\x00" in value for value in request.query_params.values()):
            raise ValidationError({"detail": "A filter value contains a NUL character."})
        # items() gives a key's last value; a list only for a key without values, which a
        # query string never has (and an empty list was dropped as falsy already).
        return {
            key: value
            for key, value in request.query_params.items()
            if key in self.filters and value and isinstance(value, str)
        }
