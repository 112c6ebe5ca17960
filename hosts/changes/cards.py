"""The dashboard's Changes card and the header's approvals badge: what waits for my
approval, what is being applied, what failed lately, and the hosts that drifted from
their profiles (registered in ``portal.dashboard`` by the hosts app)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from hosts.changes import drift
from hosts.changes.work import approvals_topic
from hosts.models.changes import Change, ChangeStatus, Drift, DriftState
from portal import access
from portal.dashboard import Badge, Card

#: How far back the card counts failed changes.
RECENT = timedelta(days=7)


def topics(user: Any) -> list[str]:
    visible = access.projects(user, "change.view").values_list("pk", flat=True)
    return [t for pk in visible for t in (approvals_topic(pk), drift.topic(pk))]


def waiting_for(user: Any) -> int:
    """Changes waiting for an approval ``user`` may give."""
    approvable = access.projects(user, "change.approve")
    return Change.objects.filter(project__in=approvable, status=ChangeStatus.AWAITING_APPROVAL).count()


def build(user: Any) -> dict[str, Any] | None:
    visible = access.projects(user, "change.view")
    if not access.is_admin(user) and not visible.exists():
        return None
    since = timezone.now() - RECENT
    counts = Change.objects.filter(project__in=visible).aggregate(
        applying=Count("pk", filter=Q(status=ChangeStatus.APPLYING)),
        awaiting=Count("pk", filter=Q(status=ChangeStatus.AWAITING_APPROVAL)),
        failed=Count(
            "pk", filter=Q(status__in=[ChangeStatus.FAILED, ChangeStatus.PARTIAL], created__gte=since)
        ),
    )
    drifted = Drift.objects.filter(host__project__in=visible, state=DriftState.DRIFTED)
    return {
        "counts": counts,
        "waiting_for_me": waiting_for(user),
        "drifted": drifted.count(),
        "drifted_hosts": list(drifted.select_related("host", "profile").order_by("host__name")[:5]),
        "may_plan": access.projects(user, "change.plan").exists(),
    }


CARD = Card(
    name="changes",
    title="Changes",
    url_name="hosts:changes",
    template="hosts/changes/partials/dashboard_card.html",
    build=build,
    topics=topics,
    order=30,
)

APPROVALS_BADGE = Badge(
    name="approvals",
    section="work",
    url_name="approvals",
    count=waiting_for,
    title="{n} change(s) wait for your approval",
    topics=lambda user: [
        approvals_topic(pk) for pk in access.projects(user, "change.approve").values_list("pk", flat=True)
    ],
)
