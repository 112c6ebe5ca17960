"""Make sure an Admin exists, so a fresh portal can be signed into."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the 'admin' superuser if no superuser exists (PORTAL_ADMIN_PASSWORD or a generated one)."

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True, is_active=True).exists():
            return
        username = os.environ.get("PORTAL_ADMIN_USER", "admin")
        password = os.environ.get("PORTAL_ADMIN_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        user, _ = users.objects.get_or_create(username=username)
        user.is_superuser = user.is_staff = user.is_active = True
        user.set_password(password)
        user.save()
        if generated:
            # Printed once: the hash is all the portal keeps.
            self.stdout.write(
                self.style.WARNING(f"Created Admin '{username}' with password: {password}  (shown only now)")
            )
        else:
            self.stdout.write(f"Created Admin '{username}' with the password from PORTAL_ADMIN_PASSWORD")
