"""Where a webhook may be sent: to a chat server or a receiver on the network, never to an
endpoint the portal manages (portal.peers: a host's Docker API, a vCenter),
never to this machine, link-local (cloud metadata), multicast or reserved addresses,
unless the network is one an Admin allowed (PORTAL_ALERT_ALLOWED_NETWORKS).

Checked when a channel is made and again before every send: a host added later, or a name
that resolves elsewhere now, is refused then too. The managed endpoints are read at each
check (one query per source): a send is rare beside that query, and a copy kept across
processes would have to be told of every host's change to stay a guard."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from portal import peers

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _allowed(ip: Address) -> bool:
    return any(ip in ipaddress.ip_network(net, strict=False) for net in settings.ALERT_ALLOWED_NETWORKS)


def _addresses(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError:
        return []  # not resolvable now: the send fails and says so, and is tried again
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def refusal(url: str) -> str:
    """Why a webhook may not go to ``url`` ("" when it may)."""
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "The address cannot be read."
    if parts.scheme not in ("http", "https") or not host:
        return "Give the http:// or https:// address to POST to."
    managed = peers.managed()
    found = _addresses(host, port)
    if (host, port) in managed or any((str(ip), port) in managed for ip in found):
        return (
            f"{host}:{port} is an endpoint the portal manages: a webhook never goes to a host's"
            " Docker API or a vCenter."
        )
    for ip in found:
        if _allowed(ip):
            continue
        if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
            return (
                f"{host} is {ip}: a webhook goes to a receiver on the network, not to this machine,"
                " link-local (cloud metadata), multicast or reserved addresses. An Admin may allow a"
                " network with PORTAL_ALERT_ALLOWED_NETWORKS."
            )
    return ""
