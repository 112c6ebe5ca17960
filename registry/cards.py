"""The dashboard's Registries card: the registries a person may browse."""

from __future__ import annotations

from typing import Any

from portal import access
from portal.dashboard import Card
from registry.models import Registry

SHOWN = 6


def build(user: Any) -> dict[str, Any] | None:
    registries = Registry.objects.visible_to(user).order_by("name")
    admin = access.is_admin(user)
    if not admin and not registries.exists():
        return None
    return {"registries": list(registries[:SHOWN]), "total": registries.count(), "is_admin": admin}


CARD = Card(
    name="registries",
    title="Registries",
    url_name="registry:index",
    template="registry/dashboard_card.html",
    build=build,
    order=40,
)
