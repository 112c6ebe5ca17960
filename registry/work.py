"""The registries a person may browse, as a panel on My work."""

from __future__ import annotations

from typing import Any

from portal import work
from registry.views import visible_registries


def panel(user: Any) -> dict[str, Any]:
    return {"registries": visible_registries(user).order_by("name")[: work.LIMIT]}
