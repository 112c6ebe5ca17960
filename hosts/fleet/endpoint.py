"""Where a Docker engine is and how it fails: the endpoint URL, its parts, the timeouts
and API version every connection uses, and ``EngineError``, the sentence a person reads."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

#: Seconds for connecting and for each answer: a dead or silent host fails within this.
TIMEOUT = 5
#: The API version we speak unless the engine only speaks an older one.
API_VERSION = "1.41"
INSECURE_PORT = 2375


class EngineError(Exception):
    """Something a person can act on: unreachable, refused, untrusted, bad input."""


class EndpointError(EngineError):
    """The Docker endpoint URL itself is malformed."""


@dataclass(frozen=True)
class Endpoint:
    scheme: str  # "tcp" or "ssh"
    host: str
    port: int
    user: str = ""

    @property
    def is_tls_port(self) -> bool:
        return self.scheme == "tcp" and self.port != INSECURE_PORT


_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_endpoint(url: str) -> Endpoint:
    """``tcp://host:port`` or ``ssh://user@host[:port]``, or EndpointError saying what is wrong."""
    url = (url or "").strip()
    if not url:
        raise EndpointError("Enter the Docker endpoint, e.g. tcp://photon-01.example.com:2376.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise EndpointError(f"{url!r} is not a valid URL (check the port).") from None
    if parts.scheme not in {"tcp", "ssh"}:
        raise EndpointError("The Docker endpoint must start with tcp:// (TLS, port 2376) or ssh://.")
    host = parts.hostname or ""
    if not host or not (_is_ip(host) or _HOST_RE.match(host)):
        raise EndpointError(f"{url!r} has no valid host name.")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise EndpointError("The Docker endpoint is only scheme://host:port, without a path.")
    if parts.scheme == "tcp":
        if port is None:
            raise EndpointError("Give the port: tcp://HOST:2376 for TLS.")
        if parts.username:
            raise EndpointError("A tcp:// endpoint takes no user name.")
        return Endpoint("tcp", host, port)
    if not parts.username:
        raise EndpointError("An ssh:// endpoint needs a user: ssh://USER@HOST.")
    return Endpoint("ssh", host, port or 22, parts.username)


def unreachable(endpoint: Endpoint, exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"Cannot reach {endpoint.host}:{endpoint.port}: {reason}."


def netloc(endpoint: Endpoint) -> str:
    host = endpoint.host if ":" not in endpoint.host else f"[{endpoint.host}]"
    return f"{host}:{endpoint.port}"


def short(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""
