"""The alerts' Celery task: one attempt at one delivery, and the next one scheduled when it failed."""

from __future__ import annotations

import logging
import threading

from celery import shared_task
from django.utils import timezone

from . import delivering
from .models import Delivery

log = logging.getLogger(__name__)


@shared_task(name="alerts.deliver")
def deliver(delivery_id: int) -> str:
    delivery = delivering.deliver(delivery_id)
    if delivery is None:
        return "not due, or taken"
    if delivery.state == Delivery.State.RETRYING and delivery.due is not None:
        schedule(delivery.pk, (delivery.due - timezone.now()).total_seconds())
    return str(delivery.state)


def schedule(delivery_id: int, delay: float) -> None:
    """Run ``deliver`` in ``delay`` seconds. Embedded (tasks on this process's threads, which
    take no countdown) a timer thread queues it; with a broker, the broker's countdown. A
    schedule lost with its process is picked up by the watcher (alerts.routing.send_due)."""
    delay = max(0.0, delay)
    if deliver.app.conf.task_always_eager:
        timer = threading.Timer(delay, lambda: deliver.apply_async((delivery_id,)))
        timer.daemon = True
        timer.start()
        return
    try:
        deliver.apply_async((delivery_id,), countdown=delay)
    except Exception:
        log.exception("alerts: delivery %s not scheduled (the watcher sends it when due)", delivery_id)
