"""Helpers for the API tests: a client that authenticates with a real personal token."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from portal.api_auth import issue


def client_for(user: Any) -> APIClient:
    client = APIClient()
    if user is not None:
        _, token = issue(user, "test")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client
