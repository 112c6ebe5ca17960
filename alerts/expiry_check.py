"""Warn ahead of a certificate or credential lapsing (portal.expiry), once per item, rule and expiry.

A rule choosing "Certificate or credential expiring" hears of each item of its scope (its
project's; every project's and the portal's own for a global rule) once it expires within the
rule's ``within_days``. What was told is recorded (ExpiryNotice) before it is sent, in the same
transaction: the next run, or the next process after a restart, tells nobody twice. A renewed
item has another expiry, so it is told anew when that one comes near.

Run by the ``alerts.expiry`` watcher every ALERT_EXPIRY_INTERVAL seconds (default a day);
the tests call ``run`` directly.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal import event_kinds, events, expiry
from portal.models import Event
from portal.queueing import enqueue_or_leave

from . import routing, tasks
from .models import Delivery, ExpiryNotice, Rule

log = logging.getLogger(__name__)


def interval() -> float:
    return float(settings.ALERT_EXPIRY_INTERVAL)


def _plain(text: str) -> str:
    # Names were typed by people (a host's, a registry's): no control character reaches a
    # mail header or a chat line, as a newline could make one say more than it should.
    return "".join(" " if unicodedata.category(c).startswith("C") else c for c in text).strip()


def _renew_at(renew: str) -> str:
    if not renew.startswith("/"):
        return renew
    # No request here (a watcher): the configured public address, else the path alone.
    return (getattr(settings, "PORTAL_BASE_URL", "") or "").rstrip("/") + renew


def message(item: expiry.Expiring, now: datetime) -> str:
    """What expires, when, and where to renew it."""
    when = item.not_after.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    what = _plain(item.what)
    what = what[:1].upper() + what[1:]
    if item.not_after <= now:
        said = f"{what} expired on {when}."
    else:
        left = item.not_after - now
        # Rounded: a certificate made for 5 days, checked a second later, lapses "in 5 days".
        days = round(left / timedelta(days=1))
        ahead = (
            "in less than a day" if left < timedelta(days=1) else f"in {days} day{'s' if days != 1 else ''}"
        )
        said = f"{what} expires on {when} ({ahead})."
    return f"{said} Renew it: {_renew_at(item.renew)}"


def _wants(rule: Rule, item: expiry.Expiring, now: datetime) -> bool:
    if rule.project_id is not None and rule.project_id != item.project_id:
        return False  # a project's rule hears of its own project's items only
    return item.not_after <= now + timedelta(days=rule.within_days)


def run(now: datetime | None = None) -> list[Delivery]:
    """One check: the deliveries it queued (digest rules' events wait for their digest)."""
    now = now or timezone.now()
    rules = [r for r in Rule.objects.prefetch_related("channels") if event_kinds.EXPIRING in r.kinds]
    if not rules:
        return []  # nobody listens: the providers are not even asked
    horizon = now + timedelta(days=max(r.within_days for r in rules))
    told: dict[tuple[str, datetime], Event] = {}
    queued: list[Delivery] = []
    for item in expiry.items(horizon):
        for rule in rules:
            if _wants(rule, item, now):
                queued += _tell(rule, item, now, told)
    for delivery in queued:
        enqueue_or_leave(tasks.deliver, delivery.pk)
    return queued


def _tell(
    rule: Rule, item: expiry.Expiring, now: datetime, told: dict[tuple[str, datetime], Event]
) -> list[Delivery]:
    """Record the notice and make its deliveries together; nothing when it was told before."""
    with transaction.atomic():
        notice, made = ExpiryNotice.objects.get_or_create(
            rule=rule, item_key=item.key, not_after=item.not_after
        )
        if not made:
            return []
        event = told.get((item.key, item.not_after))
        if event is None:  # one event per item and run, whichever rules hear of it
            event = events.notify(
                message(item, now),
                severity=Event.Severity.ERROR if item.not_after <= now else Event.Severity.WARNING,
                obj=item.obj,
                project=item.project_id,
                kind=event_kinds.EXPIRING,
            )
            told[(item.key, item.not_after)] = event
        notice.event = event
        notice.save(update_fields=["event"])
        made_now: list[Delivery] = []
        for channel in rule.channels.all():
            if rule.digest:
                routing.add_to_digest(rule, channel, event)
            else:
                made_now.append(routing.new_delivery(rule, channel, event, key=f"expiry:{item.key}"))
    return made_now


async def watch_expiry(shard: Any) -> None:
    """The watcher (portal.watchers): a check now, then every ``interval()`` seconds."""
    while True:
        try:
            if shard.index == 1:  # one shard is enough: what was told is recorded per rule
                await database_sync_to_async(run, thread_sensitive=False)()
        except Exception:
            log.exception("alerts: the expiry check failed")
        await asyncio.sleep(interval())  # a schedule, not a wait on a condition
