"""`make run`: check the database, migrate, make sure an Admin exists, serve with daphne."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection


class Command(BaseCommand):
    help = "Prepare the database and serve the portal with daphne."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        try:
            connection.ensure_connection()
        except DatabaseError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(f"cannot reach the database: {first_line}") from None
        call_command("migrate", interactive=False, verbosity=0)
        call_command("ensure_admin")
        connection.close()
        daphne = shutil.which("daphne", path=os.path.dirname(sys.executable)) or "daphne"
        self.stdout.write(f"Photon Portal on http://{host}:{port}/  (Ctrl-C stops it)")
        sys.stdout.flush()
        # Replace this process: daphne gets the signals (Ctrl-C, SIGTERM) directly.
        os.execv(daphne, [daphne, "-b", host, "-p", str(port), "portal.asgi:application"])  # noqa: S606
