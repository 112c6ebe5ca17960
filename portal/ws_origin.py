"""The websocket Origin check: scheme, host AND port, against the allowed origins.

Channels' AllowedHostsOriginValidator compares the Origin's host name with
ALLOWED_HOSTS and ignores its port and scheme, so a page served by anything else on
the same name (``http://portal:8080``, another service on the machine) could open a
signed-in user's live socket. Allowed here: the portal's own origin as this request
reached it (its scheme and its Host header, the host being one of ALLOWED_HOSTS),
``PORTAL_BASE_URL``'s origin and ``PORTAL_CSRF_TRUSTED_ORIGINS`` (a proxy's public
names). Anything else, or no Origin at all, is refused at the handshake.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def normal_origin(text: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin or URL, the port made explicit; None if unusable."""
    try:
        parts = urlsplit(text.strip())
        scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host, port or DEFAULT_PORTS[scheme]


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _request_scheme(scope: dict[str, Any]) -> str:
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        header, secure_value = proxy
        sent = _header(scope, header.removeprefix("HTTP_").lower().replace("_", "-").encode())
        if sent is not None:
            return "https" if sent.split(",")[0].strip() == secure_value else "http"
    return "https" if scope.get("scheme") in {"wss", "https"} else "http"


def own_origin(scope: dict[str, Any]) -> tuple[str, str, int] | None:
    """The origin this request reached the portal at, if its Host is one the portal serves."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    return normal_origin(f"{_request_scheme(scope)}://{host}")


def trusted_origins() -> set[tuple[str, str, int]]:
    configured = [*settings.CSRF_TRUSTED_ORIGINS, getattr(settings, "PORTAL_BASE_URL", "")]
    return {origin for origin in map(normal_origin, configured) if origin and "*" not in origin[1]}


def origin_allowed(scope: dict[str, Any]) -> bool:
    sent = _header(scope, b"origin")
    origin = normal_origin(sent) if sent else None
    if origin is None:
        return False
    return origin == own_origin(scope) or origin in trusted_origins()


class OriginValidator:
    """ASGI middleware: a websocket from an origin not allowed is denied before anything else."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
