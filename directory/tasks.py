"""The directory's Celery task: the periodic sync (queued by its watcher, see registrations)."""

from __future__ import annotations

from celery import shared_task

from .sync import sync_all


@shared_task(name="directory.sync")
def sync_directory() -> str:
    return str(sync_all())
