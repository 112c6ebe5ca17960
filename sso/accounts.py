"""One person signing in through the provider: the portal user their claims name (made
on first sign-in, never a local account taken over), and their groups' roles applied."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction

from directory import mapping
from portal import audit

from .models import Provider, SsoAccount, SsoMembership


class SignInRefused(Exception):
    """The portal does not let this person in (the sentence says why, for the login page)."""


#: What each change the provider's groups make is called on the audit trail (literal:
#: the audit-label test reads it).
SSO_ACTIONS = {
    "member_add": "sso.member_add",
    "member_role": "sso.member_role",
    "member_remove": "sso.member_remove",
    "admin_grant": "sso.admin_grant",
    "admin_revoke": "sso.admin_revoke",
}


def _record(change: str, **details: Any) -> None:
    audit.record(SSO_ACTIONS.get(change, "sso.member_add"), **details)


SOURCE = mapping.Source(marker=SsoMembership, record=_record)


def groups_in(claims: dict[str, Any], claim: str) -> set[str]:
    """The groups claim as a set of names (a list, or one string); none without a claim name."""
    if not claim:
        return set()
    value = claims.get(claim)
    if isinstance(value, str):
        return {value}
    if isinstance(value, Iterable):
        return {str(g) for g in value}
    return set()


def grants_for(provider: Provider, groups: set[str]) -> mapping.Grants:
    return mapping.combine(m for m in provider.mappings.all() if m.group in groups)


def _username(provider: Provider, claims: dict[str, Any]) -> str:
    username = str(claims.get(provider.username_claim) or "").strip()
    if not username:
        raise SignInRefused(
            f"The provider sent no {provider.username_claim} claim: ask an Admin to check the claim names."
        )
    try:
        if len(username) > 150:
            raise ValidationError("too long")
        UnicodeUsernameValidator()(username)
    except ValidationError:
        raise SignInRefused(
            f"The user name {username!r} from the provider is not one the portal can use."
        ) from None
    return username


def _claims_into(user: Any, provider: Provider, claims: dict[str, Any]) -> None:
    changed = []
    email = str(claims.get(provider.email_claim) or "")[:254]
    for name, value in (
        ("email", email),
        ("first_name", str(claims.get("given_name") or "")[:150]),
        ("last_name", str(claims.get("family_name") or "")[:150]),
    ):
        if value and getattr(user, name) != value:
            setattr(user, name, value)
            changed.append(name)
    if changed:
        user.save(update_fields=changed)


@transaction.atomic
def sign_in(provider: Provider, claims: dict[str, Any]) -> Any:
    """The user ``claims`` (checked ID token and user info) sign in as, their roles applied.
    Raises SignInRefused."""
    subject = str(claims.get("sub") or "")
    if not subject:
        raise SignInRefused("The provider's answer names nobody (no sub claim).")
    issuer = provider.discovered_issuer or provider.issuer
    account = SsoAccount.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    if account is None:
        username = _username(provider, claims)
        users = get_user_model()._default_manager
        if users.filter(username=username).exists():
            # A local account (or one from the directory, or another subject): never signed
            # into from the provider, nor a local Admin taken over.
            raise SignInRefused(
                f"{username} is an account of the portal that did not come from {provider.display_name}: "
                "it cannot be signed into from there. Sign in with its password, or ask an Admin."
            )
        user = users.create_user(username=username)  # no usable password: the provider signs in
        account = SsoAccount.objects.create(user=user, issuer=issuer, subject=subject)
        audit.record("sso.user_create", obj=user, after={"user": username, "subject": subject})
    user = account.user
    if not user.is_active:
        raise SignInRefused("This account was deactivated by an Admin of the portal.")
    _claims_into(user, provider, claims)
    groups = groups_in(claims, provider.groups_claim)
    mapping.apply(user, account, grants_for(provider, groups), SOURCE)
    user.refresh_from_db()
    return user
