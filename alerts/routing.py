"""From a committed event to deliveries: which rules choose it, what dedup folds, when it is sent.

The dedup rule (README, "Notifications"), per rule and channel:

* the first event of a (rule, kind, object) sends; further events with the same kind and
  object within ALERT_DEDUP_WINDOW seconds of that first one are folded into its delivery
  (listed in the log, not sent again);
* a host's "back ON" that comes within the window of a "went OFF" sent for the same host
  is held until that window ends, and then sent once, only if the host's last word is
  still ON: a host flapping OFF/ON sends at most its first OFF and its last ON per window;
* a digest rule sends nothing at once: its events are collected and sent as one message
  every ALERT_DIGEST_MINUTES.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal import event_kinds
from portal.models import Event
from portal.queueing import enqueue_or_leave

from . import tasks
from .delivering import OFF, ON
from .models import Channel, Delivery, Rule

log = logging.getLogger(__name__)

#: Seconds between the watcher's looks for deliveries that are due (digests, held ONs,
#: retries whose timer was lost with its process).
DUE_INTERVAL = 30.0
#: A due delivery still waiting this long after it was due lost its timer: the watcher sends it.
LATE = timedelta(seconds=60)
#: Longer than any one attempt (a webhook's 10 s, an SMTP exchange): a send still "sending" died.
STUCK = timedelta(minutes=5)


def on_event_recorded(sender: Any, event: Event, **kwargs: Any) -> None:
    """portal.events' signal: route the event once its transaction commits (a rolled-back
    event never alerts, and a task never looks for a row that is not there yet)."""
    if not event.kind:
        return
    event_id = event.pk
    transaction.on_commit(lambda: _route_safely(event_id))


def _route_safely(event_id: int) -> None:
    # Alerting must never break whoever wrote the event (a watcher, a task, a request).
    try:
        route(event_id)
    except Exception:
        log.exception("alerts: routing event %s failed", event_id)


def _object_key(event: Event) -> str:
    return f"{event.object_type}:{event.object_id}"


def rules_for(event: Event) -> list[Rule]:
    scope = (
        Q(project__isnull=True) | Q(project_id=event.project_id)
        if event.project_id
        else Q(project__isnull=True)
    )
    # kinds is a JSON list: chosen in Python, the same on SQLite and PostgreSQL.
    return [r for r in Rule.objects.filter(scope).prefetch_related("channels") if event.kind in r.kinds]


def route(event_id: int) -> list[Delivery]:
    """The deliveries made for the event (folded and digest events make none)."""
    event = Event.objects.select_related("project").get(pk=event_id)
    if event.kind == event_kinds.EXPIRING:
        return []  # each rule has its own horizon: alerts.expiry_check routes these itself
    made: list[Delivery] = []
    for rule in rules_for(event):
        for channel in rule.channels.all():
            delivery = _route_one(rule, channel, event)
            if delivery is not None:
                made.append(delivery)
    return made


def _route_one(rule: Rule, channel: Channel, event: Event) -> Delivery | None:
    now = timezone.now()
    if rule.digest:
        add_to_digest(rule, channel, event)
        return None
    window = timedelta(seconds=settings.ALERT_DEDUP_WINDOW)
    key = _object_key(event)
    mine = Delivery.objects.filter(rule=rule, channel=channel, object_key=key, digest=False, test=False)
    recent = mine.filter(created__gte=now - window)
    if event.kind == ON:
        # After an OFF sent in the window, an ON waits for that window's end (the last ON
        # wins); before any, it is an ordinary event. Never folded into an ON sent before
        # that OFF: the last word sent must not stay "OFF" for a host that is back.
        off = recent.filter(kind=OFF).order_by("-created").first()
        if off is not None:
            held = recent.filter(kind=ON, created__gte=off.created, state=Delivery.State.QUEUED).first()
            if held is not None:
                held.events.add(event)
                return None
            due = off.created + window
            held = _new(rule, channel, event, kind=ON, key=key, due=due)
            tasks.schedule(held.pk, (due - now).total_seconds())
            return held
    same = recent.filter(kind=event.kind).order_by("created").first()
    if same is not None:
        same.events.add(event)
        return None
    delivery = _new(rule, channel, event, kind=event.kind, key=key, due=None)
    enqueue_or_leave(tasks.deliver, delivery.pk)
    return delivery


def add_to_digest(rule: Rule, channel: Channel, event: Event) -> None:
    """Into the rule's open digest for the channel (one made, due in ALERT_DIGEST_MINUTES, if none)."""
    with transaction.atomic():
        open_digest = (
            Delivery.objects.select_for_update()
            .filter(rule=rule, channel=channel, digest=True, state=Delivery.State.QUEUED)
            .first()
        )
        if open_digest is None:
            due = timezone.now() + timedelta(minutes=settings.ALERT_DIGEST_MINUTES)
            open_digest = _new(rule, channel, event, kind="digest", key="", due=due, digest=True)
        open_digest.events.add(event)


def new_delivery(rule: Rule, channel: Channel, event: Event, *, key: str) -> Delivery:
    """A delivery of the event alone, not queued: the caller queues it once its transaction
    committed (alerts.expiry_check, whose own record says it is told once)."""
    return _new(rule, channel, event, kind=event.kind, key=key[:120], due=None)


def _new(
    rule: Rule, channel: Channel, event: Event, *, kind: str, key: str, due: Any, digest: bool = False
) -> Delivery:
    delivery = Delivery.objects.create(
        rule=rule,
        channel=channel,
        kind=kind,
        object_key=key,
        due=due,
        digest=digest,
        retry_base=settings.ALERT_RETRY_BASE,
    )
    delivery.events.add(event)
    return delivery


def send_due(now: Any = None) -> list[int]:
    """Queue the deliveries that are due: digests whose time came, and held or retried ones
    whose timer was lost (due for longer than LATE)."""
    now = now or timezone.now()
    # A send whose process died with it (a request, a worker): tried again.
    Delivery.objects.filter(state=Delivery.State.SENDING, updated__lte=now - STUCK).update(
        state=Delivery.State.RETRYING, due=now - LATE
    )
    waiting = Delivery.objects.filter(state__in=[Delivery.State.QUEUED, Delivery.State.RETRYING])
    due = waiting.filter(
        Q(digest=True, due__lte=now) | Q(due__lte=now - LATE) | Q(due__isnull=True, created__lte=now - LATE)
    )
    ids = list(due.values_list("pk", flat=True)[:500])
    for pk in ids:
        enqueue_or_leave(tasks.deliver, pk)
    return ids


async def watch_due(shard: Any) -> None:
    """The watcher (portal.watchers) that sends digests and deliveries whose timer was lost."""
    while True:
        try:
            if shard.index == 1:  # one shard is enough: sending is claimed per delivery
                await database_sync_to_async(send_due, thread_sensitive=False)()
        except Exception:
            log.exception("alerts: sending due deliveries failed")
        await asyncio.sleep(DUE_INTERVAL)  # a schedule, not a wait on a condition
