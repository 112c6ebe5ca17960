"""Restore an archive made by ``manage.py backup`` into an empty database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal import backup


class Command(BaseCommand):
    help = (
        "Restore a backup archive into an EMPTY database (refused otherwise, nothing changed). "
        "Secrets are re-encrypted with this portal's PORTAL_ENCRYPTION_KEY; without one, "
        "--write-key FILE writes the archived key to set. See docs/backup.md."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", help="a file written by manage.py backup")
        parser.add_argument("--passphrase-file", help="file whose first line is the passphrase")
        parser.add_argument(
            "--write-key",
            metavar="FILE",
            help="when this portal has no PORTAL_ENCRYPTION_KEY: write the archived one to FILE "
            "(new, mode 0600) as PORTAL_ENCRYPTION_KEY=…",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        key_file = Path(options["write_key"]) if options["write_key"] else None
        try:
            if settings.ENCRYPTION_KEYS and key_file:
                raise backup.BackupError(
                    "this portal has PORTAL_ENCRYPTION_KEY set: restored secrets are re-encrypted with it, "
                    "so there is no other key to write; drop --write-key"
                )
            if not settings.ENCRYPTION_KEYS and not key_file:
                raise backup.BackupError(
                    "this portal has no PORTAL_ENCRYPTION_KEY: set one (a new key is fine, restored secrets "
                    "are re-encrypted with it), or pass --write-key FILE to get the archived key"
                )
            if key_file and key_file.exists():
                raise backup.BackupError(f"{key_file} exists already; choose another name or move it away")
            try:
                archive = Path(options["archive"]).read_bytes()
            except OSError as exc:
                raise backup.BackupError(f"cannot read {options['archive']}: {exc}") from None
            passphrase = backup.read_passphrase(options["passphrase_file"], confirm=False)
            contents = backup.unseal(archive, passphrase)
            backup.check_restorable(contents)
            if key_file:
                # Before the rows: a key that cannot be written must not leave data nobody can read.
                line = f"PORTAL_ENCRYPTION_KEY={','.join(contents.keys)}\n"
                backup.write_private(key_file, line.encode())
            try:
                restored = backup.load(contents)
            except BaseException:
                if key_file:
                    key_file.unlink(missing_ok=True)
                raise
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from None
        total = sum(restored.counts.values())
        self.stdout.write(
            f"restored {total} row(s) from {options['archive']} (made {contents.manifest['created']})"
        )
        for label, count in restored.counts.items():
            self.stdout.write(f"  {label}: {count}")
        if restored.reencrypted:
            self.stdout.write("Secrets were re-encrypted with this portal's PORTAL_ENCRYPTION_KEY.")
        else:
            self.stdout.write(
                f"Secrets are encrypted with the archived key, written to {key_file} (mode 0600): "
                "set PORTAL_ENCRYPTION_KEY from it before starting the portal."
            )
