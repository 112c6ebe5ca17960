"""Drop audit entries and events older than PORTAL_AUDIT_RETENTION_DAYS (run daily)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from portal import audit
from portal.models import Event


class Command(BaseCommand):
    help = "Prune the audit trail and the event log to the retention setting."

    def handle(self, *args: Any, **options: Any) -> None:
        cutoff = timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS)
        events, _ = Event.objects.filter(at__lt=cutoff).delete()
        # Last, so the trail's own record of this prune says how many events went too.
        entries = audit.prune_trail(cutoff, actor_name="manage.py prune_audit", events=events)
        self.stdout.write(f"pruned {entries} audit entries and {events} events older than {cutoff:%Y-%m-%d}")
