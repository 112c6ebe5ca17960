"""Re-encrypt every stored secret with the newest key in PORTAL_ENCRYPTION_KEY."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from portal.fields import EncryptedTextField


class Command(BaseCommand):
    help = "Re-encrypt secrets with the first key of PORTAL_ENCRYPTION_KEY (put the new key first)."

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        with transaction.atomic():
            for model in apps.get_models():
                for field in model._meta.concrete_fields:
                    if not isinstance(field, EncryptedTextField):
                        continue
                    rows = model._base_manager.exclude(**{f"{field.attname}__isnull": True})
                    # Reading decrypts with any key; writing encrypts with the first.
                    for pk, plaintext in rows.values_list("pk", field.attname).iterator():
                        if plaintext:
                            model._base_manager.filter(pk=pk).update(**{field.attname: plaintext})
                            total += 1
        self.stdout.write(f"re-encrypted {total} secret(s) with the newest key")
