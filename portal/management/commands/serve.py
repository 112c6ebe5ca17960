"""`make run`: check the database, migrate, make sure an Admin exists, serve with daphne.

On the embedded default the watchers (portal.watchers) run inside this same
process, on daphne's event loop: the in-memory channel layer reaches only the
browsers of the process that publishes. With Redis, run `manage.py watch`
separately (or keep them here with --watch).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import DatabaseError, connection

from portal.watchers import Shard, run_all


class Command(BaseCommand):
    help = "Prepare the database and serve the portal with daphne."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--watch",
            action=argparse.BooleanOptionalAction,
            default=not settings.REDIS_URL,
            help="run the watchers in this process (default: on the embedded default only)",
        )

    def handle(self, *args: Any, host: str, port: int, watch: bool, **options: Any) -> None:
        try:
            connection.ensure_connection()
        except DatabaseError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            # One line for the operator, in the same form manage.py gives configuration errors.
            raise SystemExit(f"portal: cannot reach the database: {first_line}") from None
        call_command("migrate", interactive=False, verbosity=0)
        call_command("ensure_admin")
        connection.close()

        from daphne.cli import CommandLineInterface  # installs Twisted's asyncio reactor

        if watch:
            # Only now: daphne.cli (above) has installed Twisted's asyncio reactor.
            from twisted.internet import reactor

            reactor.callWhenRunning(start_watchers)
        self.stdout.write(f"Photon Portal on http://{host}:{port}/  (Ctrl-C stops it)")
        self.stdout.flush()
        CommandLineInterface().run(["-b", host, "-p", str(port), "portal.asgi:application"])


_tasks: set[asyncio.Task[None]] = set()


def start_watchers() -> None:
    task = asyncio.ensure_future(run_all(Shard()))
    _tasks.add(task)  # keep a reference: the loop holds tasks only weakly
