"""The registries a person may browse, as a panel on My work."""

from __future__ import annotations

from typing import Any

from portal import work
from registry.models import Registry


def panel(user: Any) -> dict[str, Any]:
    return {"registries": Registry.objects.visible_to(user).order_by("name")[: work.LIMIT]}
