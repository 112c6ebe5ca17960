"""Enrollment tokens: random, kept only as their SHA-256, bound to one VM, expiring."""

from __future__ import annotations

import datetime
import hashlib
import secrets

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from hosts.models import ProvisionedVm

#: How long a new VM has to phone home (clone, first boot, cloud-init).
TOKEN_LIFETIME = datetime.timedelta(seconds=getattr(settings, "PROVISION_ENROLL_SECONDS", 3600))


def expiry() -> datetime.datetime:
    return timezone.now() + TOKEN_LIFETIME


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(pvm: ProvisionedVm) -> str:
    """A fresh token for ``pvm`` (any earlier one stops working); only its hash is kept."""
    token = secrets.token_urlsafe(32)
    pvm.token_hash, pvm.token_expires, pvm.token_used = hash_token(token), expiry(), None
    pvm.save(update_fields=["token_hash", "token_expires", "token_used"])
    return token


def url(base_url: str, token: str) -> str:
    return base_url.rstrip("/") + reverse("hosts:provision_enroll", args=[token])
