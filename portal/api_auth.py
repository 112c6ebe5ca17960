"""API authentication: personal tokens (hashed at rest), sent as ``Authorization: Bearer pp_…``.

A token expires (chosen when made, at most a year) and has a scope: read-only or
read-write, one project or all its user's. The scope rides on the request's user
(portal.access.TokenScope) so that every access check, UI helper or API queryset,
honours it in the one place that decides.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from . import access, throttle
from .audit import client_address
from .models import ApiToken, Project

TOKEN_PREFIX = "pp_"  # noqa: S105 - a marker, not a secret
#: Writing last_used on every call would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
DEFAULT_DAYS = 90
MAX_DAYS = 365


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(
    user: Any,
    name: str,
    *,
    days: int = DEFAULT_DAYS,
    read_only: bool = False,
    project: Project | None = None,
) -> tuple[ApiToken, str]:
    """Make a token for ``user``; the plaintext is returned once and never stored."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"a token lasts 1 to {MAX_DAYS} days, not {days}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=token[:8],
        digest=digest(token),
        expires=timezone.now() + timedelta(days=days),
        read_only=read_only,
        project=project,
    )
    return record, token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme != self.keyword:
            return None
        token = token.strip()
        # Wrong tokens are counted per address; past the rate, even a right one waits (429).
        address = client_address(request) or "-"
        wait = throttle.exceeded("api-token-failures", address, "THROTTLE_API_TOKEN_FAILURES")
        if wait is not None:
            # DRF adds "Expected available in N seconds." and the Retry-After header.
            raise exceptions.Throttled(wait=wait, detail="Too many wrong tokens from this address.")
        if not token.startswith(TOKEN_PREFIX):
            throttle.hit("api-token-failures", address, "THROTTLE_API_TOKEN_FAILURES")
            raise exceptions.AuthenticationFailed("Malformed token.")
        record = (
            ApiToken.objects.select_related("user").filter(digest=digest(token), revoked__isnull=True).first()
        )
        if record is None or not record.user.is_active:
            throttle.hit("api-token-failures", address, "THROTTLE_API_TOKEN_FAILURES")
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        if record.expires <= now:
            raise exceptions.AuthenticationFailed("token expired")
        if record.last_used is None or now - record.last_used > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=record.pk).update(last_used=now)
        user = record.user
        access.bind_token_scope(
            user, access.TokenScope(read_only=record.read_only, project_id=record.project_id)
        )
        return user, record

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (with this challenge), not 403, to a missing token.
        return f'{self.keyword} realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """The token, as the OpenAPI schema names it (settings.SPECTACULAR_SETTINGS)."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer"}
