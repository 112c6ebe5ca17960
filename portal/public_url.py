"""The portal's address as a host must use it: ``PORTAL_BASE_URL`` when set (the TLS
proxy's ``https://`` name), the request's own scheme and host otherwise.

Every URL handed to a host (kickstart, phone-home, seed) is built here, so a portal
behind a proxy never tells a new host to phone home over plain ``http://`` to an
address only the proxy knows.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def base_url(request: HttpRequest) -> str:
    """``https://portal.example.com/``: always ending in one slash."""
    configured = getattr(settings, "PORTAL_BASE_URL", "")
    if configured:
        return configured.rstrip("/") + "/"
    return request.build_absolute_uri("/")


def absolute(request: HttpRequest, path: str) -> str:
    """``path`` (as ``reverse`` gives it, starting with ``/``) under :func:`base_url`."""
    return base_url(request).rstrip("/") + path
