"""Drop audit entries and events older than PORTAL_AUDIT_RETENTION_DAYS (run daily)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from portal.models import AuditEntry, Event


class Command(BaseCommand):
    help = "Prune the audit trail and the event log to the retention setting."

    def handle(self, *args: Any, **options: Any) -> None:
        cutoff = timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS)
        entries = AuditEntry.objects.prune(cutoff)
        events, _ = Event.objects.filter(at__lt=cutoff).delete()
        self.stdout.write(f"pruned {entries} audit entries and {events} events older than {cutoff:%Y-%m-%d}")
