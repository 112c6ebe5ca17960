"""What the engine-object rules share: who may act on a host's engine, the engine asked with its
errors told in words, names Docker accepts, and what belongs to an application."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import docker.errors

from hosts.engine_objects import reading
from hosts.fleet import engine
from hosts.models import Application, Host
from portal import access
from portal.refused import Refused

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,127}$")
COMPOSE_PROJECT = "com.docker.compose.project"
T = TypeVar("T")


@dataclass
class Pruned:
    removed: list[str] = field(default_factory=list)
    #: "name: why it stayed" (in use since the confirmation, gone already, refused by the engine)
    kept: list[str] = field(default_factory=list)
    freed: int = 0  # bytes


def check_operable(user: Any, host: Host) -> None:
    access.require(user, "host.operate", host.project_id)
    if not host.enabled:
        raise Refused(f"{host} is disabled: the portal does not connect to it.")


@contextmanager
def engine_of(host: Host) -> Iterator[Any]:
    """The host's engine, its errors told in words."""
    try:
        sdk = engine.client_for(host, timeout=15)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is told, not raised as a 500
        raise Refused(f"{host}: {engine.describe_error(exc, host.docker_url)}", status=502) from None
    try:
        yield sdk
    except Refused:
        raise
    except docker.errors.APIError as exc:
        raise Refused(f"{host}'s engine refused: {exc.explanation or exc}", status=409) from None
    except Exception as exc:  # noqa: BLE001 - nothing is sent at connect: an engine down shows here
        raise Refused(f"{host}: {engine.describe_error(exc, host.docker_url)}", status=502) from None
    finally:
        sdk.close()


def holdings(
    user: Any, host: Host, *, sizes: bool = False, kinds: tuple[str, ...] = reading.ALL
) -> reading.Holdings:
    access.require(user, "host.view", host.project_id)
    with engine_of(host) as sdk:
        return reading.read(sdk, sizes=sizes, kinds=kinds)


def valid_name(value: str, what: str) -> str:
    value = value.strip()
    if not NAME.match(value):
        raise Refused(
            f"A {what} name of 2 to 128 letters, digits, dots, dashes and underscores, starting with a "
            "letter or digit.",
            field="name",
            status=400,
        )
    return value


def application_names(host: Host) -> set[str]:
    """The names of the project's deployed applications: their volumes and networks are theirs."""
    deployed = Application.objects.filter(project_id=host.project_id).exclude(state=Application.State.REMOVED)
    return set(deployed.values_list("name", flat=True))


def owner_of(labels: dict[str, str], applications: set[str]) -> str:
    """The application this object belongs to ("" when none)."""
    name = labels.get(COMPOSE_PROJECT, "")
    return name if name in applications else ""


def find(items: list[T], key: Callable[[T], bool], what: str, host: Host) -> T:
    found = next((i for i in items if key(i)), None)
    if found is None:
        raise Refused(f"{host} has no {what}.", status=404)
    return found


def removable(host: Host, labels: dict[str, str], used_by: list[str], what: str) -> None:
    if used_by:
        raise Refused(f"{what} is in use by {', '.join(used_by)}: remove or move those first.")
    app = owner_of(labels, application_names(host))
    if app:
        raise Refused(f"{what} belongs to application {app}: remove it from the application's page.")
