"""The hosts app's managed endpoints for portal.peers: every host's Docker API over TCP,
and every vCenter's."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from hosts.models import Host, VCenter
from portal.peers import Endpoint

#: The port of each scheme when a URL names none.
DEFAULT_PORTS = {"tcp": 2375, "https": 443, "http": 80}


def _endpoint(url: str) -> Endpoint | None:
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname and port else None


def endpoints() -> Iterator[Endpoint]:
    # ssh:// endpoints are left out: an HTTP POST to an SSH server does nothing.
    urls = [*Host.objects.filter(docker_url__startswith="tcp://").values_list("docker_url", flat=True)]
    urls += VCenter.objects.values_list("url", flat=True)
    for url in urls:
        found = _endpoint(url)
        if found is not None:
            yield found
