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
    """Pages of 50, or ``page_size`` from 1 to 500: anything else is a 400 that says so (a
    bad size once fell back to 50 silently, so a script never learnt it asked wrong)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int:
        given = request.query_params.getlist(self.page_size_query_param)
        if not given:
            return self.page_size
        try:
            size = int(given[-1])
        except ValueError:
            size = 0
        if len(given) > 1 or not 1 <= size <= self.max_page_size:
            raise ValidationError({"page_size": [f"A whole number from 1 to {self.max_page_size}, once."]})
        return size

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            bounds = {"minimum": 1}
            if parameter["name"] == self.page_size_query_param:
                bounds["maximum"] = self.max_page_size
            parameter["schema"] = {**parameter.get("schema", {}), **bounds}
        return parameters


#: A filter's kind in ``StrictFilters.filters``: free text (empty means "not given"), or a
#: value of a type (an id, a date, one of a list), which an empty value is not.
TEXT, TYPED = "", "typed"


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
        # The schema types these: "project=" is no id, so it is refused, not read as absent.
        empty = sorted(
            k for k, kind in self.filters.items() if kind == TYPED and request.query_params.get(k) == ""
        )
        if empty:
            raise ValidationError({name: ["A value is needed when the filter is given."] for name in empty})
        # items() gives a key's last value; a list only for a key without values, which a
        # query string never has (and an empty list was dropped as falsy already).
        return {
            key: value
            for key, value in request.query_params.items()
            if key in self.filters and value and isinstance(value, str)
        }
