"""The API's defaults, named in settings.REST_FRAMEWORK. Kept apart from portal.api:
DRF imports these while it loads, before portal.api's views can be imported."""

from __future__ import annotations

from typing import Any

from rest_framework import pagination, permissions
from rest_framework.request import Request

from . import access


class SignedIn(permissions.BasePermission):
    """The default gate: a signed-in, active user. Each view then asks portal.access."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return access.is_signed_in(request.user)


class Pages(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
