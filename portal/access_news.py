"""News of access changes for the open live sockets: when a membership or an account
changes, that user's sockets check their subscriptions again (portal.consumers), once
the change is committed, so that they read what it left."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from . import live
from .models import Membership


def _tell(user_id: int | None) -> None:
    if user_id is not None:
        transaction.on_commit(lambda: live.access_changed(user_id))


def _membership_changed(sender: Any, instance: Membership, **kwargs: Any) -> None:
    _tell(instance.user_id)


def _account_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    # Every save (a sign-in's last_login too): rare enough, and a role or is_active may be in it.
    _tell(instance.pk)


def connect() -> None:
    for signal in (post_save, post_delete):
        signal.connect(
            _membership_changed, sender=Membership, dispatch_uid=f"access-news-membership-{signal}"
        )
        signal.connect(_account_changed, sender=get_user_model(), dispatch_uid=f"access-news-user-{signal}")
