"""`manage.py watch [--shard I/N]`: keep every watcher running (see portal.watchers)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from portal.watchers import WATCHERS, Shard, run_all


class Command(BaseCommand):
    help = "Watch Docker engines and vCenters and keep the database and browsers current."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--shard", default="1/1", help="I/N: this process watches its Nth share")
        parser.add_argument(
            "--only", action="append", choices=sorted(WATCHERS), help="run only these watchers"
        )

    def handle(self, *args: Any, shard: str, only: list[str] | None, **options: Any) -> None:
        try:
            parsed = Shard.parse(shard)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_all(parsed, only))
