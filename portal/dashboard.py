"""The dashboard's cards from the apps: each registers a panel (template context) in its
``ready()``, so the core shows the fleet's counters without knowing the hosts app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Panel = Callable[[Any], dict[str, Any]]

PANELS: list[Panel] = []


def register(panel: Panel) -> None:
    if panel not in PANELS:
        PANELS.append(panel)


def panels(user: Any) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for panel in PANELS:
        context.update(panel(user))
    return context
