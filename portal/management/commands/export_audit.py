"""Write the audit trail as CSV (the same columns and escaping as the UI's export)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.audit_views import AUDIT_FILTERS, AuditFilterForm, csv_rows, narrow_audit
from portal.models import AuditEntry


class Command(BaseCommand):
    help = "Export the audit trail as CSV to a file or standard output, optionally filtered."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", default="-", help="file to write; - for standard output")
        parser.add_argument("--person", help="user name contains")
        parser.add_argument("--action", help="action starts with")
        parser.add_argument("--object", help="object name contains, or object type equals")
        parser.add_argument("--since", help="from this day (YYYY-MM-DD)")
        parser.add_argument("--until", help="up to this day (YYYY-MM-DD)")

    def handle(self, *args: Any, **options: Any) -> None:
        form = AuditFilterForm({name: options[name] for name in AUDIT_FILTERS if options[name]})
        if not form.is_valid():
            problems = (f"{k}: {' '.join(str(e) for e in v)}" for k, v in form.errors.items())
            raise CommandError(" ".join(problems))
        entries = narrow_audit(AuditEntry.objects.all(), form.cleaned_data)
        if options["output"] == "-":
            count = self._write(entries, lambda line: self.stdout.write(line, ending=""))
        else:
            with open(options["output"], "w", newline="", encoding="utf-8") as file:
                count = self._write(entries, file.write)
        # The count goes to stderr: stdout may be the CSV itself.
        self.stderr.write(f"exported {count} audit entries")

    @staticmethod
    def _write(entries: Any, write: Any) -> int:
        lines = -1  # the header is not an entry
        for line in csv_rows(entries):
            write(line)
            lines += 1
        return lines
