"""The dashboard's Hosts card: the fleet's counters, kept live by their own per-project
fragments (hosts.fleet.status), so the card itself is never read again as a whole."""

from __future__ import annotations

from typing import Any

from hosts.fleet import status
from portal import access
from portal.dashboard import Card


def build(user: Any) -> dict[str, Any]:
    fleet = status.fleet_summary(user)
    return {
        "fleet": fleet,
        "is_admin": access.is_admin(user),
        "may_add": access.projects(user, "host.manage").exists(),
    }


CARD = Card(
    name="hosts",
    title="Hosts",
    url_name="hosts:index",
    template="hosts/fleet/dashboard_card.html",
    build=build,
    topics=lambda user: status.live_topics(
        user, list(access.projects(user, "host.view").values_list("pk", flat=True))
    ),
    order=10,
    refresh=False,
)
