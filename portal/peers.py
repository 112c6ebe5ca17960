"""Endpoints the portal manages, as the apps that manage them tell it: what an address a
person types for something else (a webhook) must never point at. The portal holds root
on its hosts and speaks to their engines and vCenters; a Project admin's webhook aimed at
another project's Docker API would act with the portal's network position.

Apps register a source (a callable giving (host name or IP address, port) pairs, as
stored); the core knows no app."""

from __future__ import annotations

from collections.abc import Callable, Iterable

Endpoint = tuple[str, int]

#: Each gives the endpoints, as stored, an app manages.
SOURCES: list[Callable[[], Iterable[Endpoint]]] = []


def register(source: Callable[[], Iterable[Endpoint]]) -> None:
    if source not in SOURCES:
        SOURCES.append(source)


def managed() -> set[Endpoint]:
    """Every managed endpoint, its host in lower case."""
    return {(host.strip().lower().strip("[]"), port) for source in SOURCES for host, port in source() if host}
