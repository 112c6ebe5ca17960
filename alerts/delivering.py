"""One attempt at a delivery that is due, and what it leaves in the delivery log.

A failure is tried again (alerts.tasks schedules it) ALERT_RETRY_BASE seconds later, then
3 times longer each time, until ALERT_RETRY_TRIES attempts were made; a test send is tried once.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from portal.models import Event

from . import messages, sending
from .models import Delivery

#: The kinds that pair up for flapping: a host's OFF and back ON.
OFF, ON = "host.off", "host.on"


def deliver(delivery_id: int) -> Delivery | None:
    """Attempt the delivery if it is due and nobody else is at it (claimed first: a timer and
    the watcher may both ask); the delivery as it now is, or None when it was not ours."""
    now = timezone.now()
    sendable = Delivery.objects.filter(
        pk=delivery_id, state__in=[Delivery.State.QUEUED, Delivery.State.RETRYING]
    )
    due = Q(due__isnull=True) | Q(due__lte=now + timedelta(seconds=1))
    if not sendable.filter(due).update(state=Delivery.State.SENDING, updated=now):
        return None
    delivery = Delivery.objects.select_related("channel").get(pk=delivery_id)
    events = list(delivery.events.select_related("project").order_by("at", "id"))
    if delivery.kind == ON and not delivery.digest and not _still_on(delivery):
        return _finish(delivery, Delivery.State.SKIPPED, "the host went OFF again before this was due")
    if not events:
        return _finish(delivery, Delivery.State.SKIPPED, "no event left to tell")
    if delivery.digest:
        data = messages.digest_payload(events)
    else:
        # The first event of the window speaks; a held ON with its last.
        data = messages.payload(events[-1] if delivery.kind == ON else events[0], count=len(events))
    record(delivery, sending.send(delivery.channel, data, delivery.pk))
    return delivery


def _still_on(delivery: Delivery) -> bool:
    """The host's last OFF/ON event says ON."""
    object_type, _, object_id = delivery.object_key.partition(":")
    last = (
        Event.objects.filter(object_type=object_type, object_id=object_id, kind__in=[OFF, ON])
        .order_by("-at", "-id")
        .values_list("kind", flat=True)
        .first()
    )
    return last == ON


def record(delivery: Delivery, answer: sending.Answer) -> None:
    """The attempt in the log; the delivery sent, failed for good, or due again later."""
    now = timezone.now()
    delivery.attempts += 1
    delivery.log = [*delivery.log, {"at": now.isoformat(), "status": answer.status, "answer": answer.text}]
    delivery.last_status = answer.status[:100]
    if answer.ok:
        delivery.state, delivery.sent_at, delivery.last_error, delivery.due = (
            Delivery.State.SENT,
            now,
            "",
            None,
        )
    else:
        delivery.last_error = answer.text
        if delivery.test or delivery.attempts >= settings.ALERT_RETRY_TRIES:
            delivery.state, delivery.due = Delivery.State.FAILED, None
        else:
            delivery.state, delivery.due = Delivery.State.RETRYING, now + retry_delay(delivery)
    delivery.save()


def retry_delay(delivery: Delivery) -> timedelta:
    """base, 3 x base, 9 x base... after the 1st, 2nd, 3rd failed attempt."""
    return timedelta(seconds=delivery.retry_base * 3 ** (max(1, delivery.attempts) - 1))


def _finish(delivery: Delivery, state: str, error: str) -> Delivery:
    delivery.state, delivery.last_error, delivery.due = state, error, None
    delivery.save()
    return delivery
