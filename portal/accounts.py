"""People who may sign in, managed by Admins in the portal (not only in Django's admin):
made, disabled and enabled, deleted, and given a one-time link to choose a password.

A password is never shown to anyone: a new person, or one whose password an Admin reset,
gets a link that works once (Django's password reset token: it is bound to the password
hash and the last sign-in, so it stops working once used, or once the person signs in)
and expires after PASSWORD_RESET_TIMEOUT. No one disables or deletes themselves here, so
the Admin doing it always remains: the portal is never left without one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from . import access, audit
from .models import Membership
from .refused import Refused


@dataclass(frozen=True)
class Invitation:
    """Who may now choose a password, and the path of the one link that lets them."""

    user: Any
    #: Shown once to the Admin who asked (never stored, never in a repr or a log).
    path: str = field(repr=False)


def people() -> QuerySet[Any]:
    """Everyone who has an account, with their projects and roles, in two queries."""
    memberships = Membership.objects.select_related("project").order_by("project__name")
    return (
        get_user_model()
        .objects.order_by("username")
        .prefetch_related(Prefetch("memberships", queryset=memberships))
    )


def password_link(user: Any) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("password-set", args=[uid, default_token_generator.make_token(user)])


def create(actor: Any, username: str, *, email: str = "", name: str = "", admin: bool = False) -> Invitation:
    """A new person, with no password until they choose one through the link returned."""
    access.require(actor, "user.manage")
    username = username.strip()
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        raise Refused("A user name is letters, digits and @ . + - _ only.", field="username") from None
    if not username or len(username) > 150:
        raise Refused("A user name is 1 to 150 characters.", field="username")
    email = email.strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise Refused(f"{email} is not an e-mail address.", field="email") from None
    first, _, last = name.strip().partition(" ")
    users = get_user_model()
    try:
        with transaction.atomic():
            user = users(
                username=username,
                email=email,
                first_name=first[:150],
                last_name=last.strip()[:150],
                is_superuser=admin,
                is_staff=admin,
            )
            user.set_unusable_password()
            user.save()
            audit.record(
                "user.create", obj=user, actor=actor, after={"user": username, "email": email, "admin": admin}
            )
    except IntegrityError:
        raise Refused(
            f"Someone named {username} already has an account.", field="username", status=409
        ) from None
    return Invitation(user, password_link(user))


def reset_password(actor: Any, user: Any) -> Invitation:
    """Sign ``user`` out everywhere and end their password; the link lets them choose a new one."""
    access.require(actor, "user.manage")
    if user.pk == actor.pk:
        raise Refused("Change your own password on your account page.")
    with transaction.atomic():
        user.set_unusable_password()
        user.save(update_fields=["password"])
        ended = end_sessions(user)
        audit.record("user.password_reset", obj=user, actor=actor, after={"sessions_ended": ended})
    return Invitation(user, password_link(user))


def set_active(actor: Any, user: Any, active: bool) -> None:
    """Disable (signs out everywhere; their memberships stay) or enable a person."""
    access.require(actor, "user.manage")
    if user.is_active == active:
        return
    if not active:
        _refuse_losing(actor, user, "disable")
    with transaction.atomic():
        user.is_active = active
        user.save(update_fields=["is_active"])
        ended = 0 if active else end_sessions(user)
        audit.record(
            "user.enable" if active else "user.disable",
            obj=user,
            actor=actor,
            after={"active": active, "sessions_ended": ended},
        )


def delete(actor: Any, user: Any) -> None:
    """Delete a person and their memberships; the audit trail keeps their name."""
    access.require(actor, "user.manage")
    _refuse_losing(actor, user, "delete")
    with transaction.atomic():
        projects = sorted(m.project.name for m in user.memberships.select_related("project"))
        audit.record(
            "user.delete", obj=user, actor=actor, before={"user": user.username, "projects": projects}
        )
        user.delete()


def _refuse_losing(actor: Any, user: Any, verb: str) -> None:
    # Only an active Admin gets here, and never about themselves: so one always remains.
    if user.pk == actor.pk:
        raise Refused(f"You cannot {verb} yourself: ask another Admin.")


def password_changed(user: Any) -> None:
    """Someone chose a new password (their own page, or a one-time link)."""
    audit.record("user.password_change", obj=user, actor=user)


def sessions_of(user: Any) -> list[Session]:
    """``user``'s unexpired browser sessions. Sessions are not indexed by user, so every
    unexpired one is decoded: fine for an account page, not for a loop."""
    found = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).order_by("-expire_date"):
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            found.append(session)
    return found


def sign_out_elsewhere(user: Any, current: str | None) -> int:
    """Every browser of ``user`` but this one signed out (a lost laptop, a shared machine)."""
    ended = end_sessions(user, keep=current)
    audit.record("user.sessions_end", obj=user, actor=user, after={"ended": ended})
    return ended


def end_sessions(user: Any, *, keep: str | None = None) -> int:
    """Sign ``user`` out of every browser (but the session ``keep``); returns how many ended."""
    ended = [s.session_key for s in sessions_of(user) if s.session_key != keep]
    Session.objects.filter(session_key__in=ended).delete()
    return len(ended)


#: Kept in each browser session at sign-in, so the account page can tell sessions apart.
SIGNED_IN_AT, SIGNED_IN_FROM, SIGNED_IN_WITH = "portal_signed_in_at", "portal_signed_in_from", "portal_agent"


def mark_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """``user_logged_in``: when, from where and with what browser this session began."""
    if request is None or not hasattr(request, "session"):
        return
    request.session[SIGNED_IN_AT] = timezone.now().isoformat()
    request.session[SIGNED_IN_FROM] = audit.client_address(request) or ""
    request.session[SIGNED_IN_WITH] = str(request.META.get("HTTP_USER_AGENT", ""))[:200]


def connect() -> None:
    user_logged_in.connect(mark_session, dispatch_uid="portal.accounts.mark_session")
