"""Write the portal's data and the keys to its secrets into one passphrase-encrypted archive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal import backup


class Command(BaseCommand):
    help = (
        "Back up the database and PORTAL_ENCRYPTION_KEY into one archive encrypted with a passphrase "
        f"(from --passphrase-file, ${backup.PASSPHRASE_ENV}, or asked for at a terminal). See docs/backup.md."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "archive", help="file to write (refused if it exists); it is made readable by you only"
        )
        parser.add_argument("--passphrase-file", help="file whose first line is the passphrase")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["archive"])
        try:
            if path.exists():
                raise backup.BackupError(f"{path} exists already; choose another name or move it away")
            passphrase = backup.read_passphrase(options["passphrase_file"], confirm=True)
            if len(passphrase) < backup.MIN_PASSPHRASE:
                raise backup.BackupError(
                    f"the passphrase is too short: at least {backup.MIN_PASSPHRASE} characters "
                    "(the archive holds the key to every stored secret)"
                )
            contents = backup.take()
            backup.write_private(path, backup.seal(contents, passphrase))
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from None
        rows = contents.database.count('"model":')
        self.stdout.write(f"wrote {path}: {rows} row(s), {len(contents.keys)} encryption key(s)")
        self.stdout.write(
            "Keep the archive and its passphrase apart: together they open every stored secret."
        )
