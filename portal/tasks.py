"""Tasks every deployment has."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="portal.ping", ignore_result=False)
def ping() -> str:
    """Answers "pong": /healthz sends it to prove a worker takes and finishes tasks."""
    return "pong"
