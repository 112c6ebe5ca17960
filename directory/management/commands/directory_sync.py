"""`manage.py directory_sync`: the periodic sync, now (see directory.sync)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from directory.sync import sync_all


class Command(BaseCommand):
    help = "Re-read every directory user's groups with the bind account and apply the mappings."

    def handle(self, *args: Any, **options: Any) -> None:
        report = sync_all()
        if report.failed:
            raise CommandError(str(report))
        self.stdout.write(str(report))
