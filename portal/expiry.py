"""What the portal holds that expires: certificates and credentials, as the apps that hold
them tell it. The alerts app asks (``items``) and warns each rule's channels ahead of time.

The core knows no app: an app registers a *provider* (``register``, from its
registrations), a callable taking the horizon and giving the items that expire by then
(it may give more; the caller filters). The core's own item, API tokens, is built in.
SSH keys have no expiry and are not here.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from cryptography import x509
from django.db import models
from django.urls import reverse
from django.utils import timezone

from .models import ApiToken

Kind = Literal["certificate", "credential"]


@dataclass(frozen=True)
class Expiring:
    """One thing that stops working at ``not_after``."""

    kind: Kind
    #: Stable across runs and renewals: with ``not_after`` it is what a warning is sent once for.
    key: str
    #: For people: "the Docker client certificate of host web-1".
    what: str
    #: Whose it is: a project's rules hear of their project's items; None: only global rules.
    project_id: int | None
    not_after: datetime.datetime
    #: Where to renew it: a path in the portal, or words when the portal cannot do it.
    renew: str
    #: The row it belongs to (the event's object, for the log and the audit).
    obj: models.Model | None = field(default=None, compare=False)


#: Given the horizon, the items that expire by then (or more: the caller filters).
Provider = Callable[[datetime.datetime], Iterable[Expiring]]

PROVIDERS: list[Provider] = []


def register(provider: Provider) -> None:
    """Called from an app's registrations; registering twice (tests reload apps) is harmless."""
    if provider not in PROVIDERS:
        PROVIDERS.append(provider)


def not_after(pem: str) -> datetime.datetime | None:
    """The earliest notAfter of the PEM certificates in ``pem`` (a bundle stops working when
    its first certificate does); None when there is none or it cannot be read."""
    if "-----BEGIN CERTIFICATE-----" not in (pem or ""):
        return None
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return None
    return min((c.not_valid_after_utc for c in certs), default=None)


def certificate(
    pem: str, *, key: str, what: str, project_id: int | None, renew: str, obj: models.Model | None
) -> Iterator[Expiring]:
    """The item for one stored certificate (nothing when the text holds none)."""
    when = not_after(pem)
    if when is not None:
        yield Expiring("certificate", key, what, project_id, when, renew, obj)


def api_tokens(until: datetime.datetime) -> Iterator[Expiring]:
    """Live API tokens expiring by ``until``: a revoked or expired one is dead on purpose."""
    live = ApiToken.objects.filter(revoked__isnull=True, expires__gt=timezone.now(), expires__lte=until)
    renew = reverse("api-tokens")
    for token in live.select_related("user"):
        yield Expiring(
            "credential",
            f"portal.apitoken:{token.pk}",
            f"the API token {token.name} ({token.prefix}…) of {token.user.get_username()}",
            token.project_id,
            token.expires,
            renew,
            token,
        )


def items(until: datetime.datetime) -> list[Expiring]:
    """Everything that expires by ``until``, from every provider, soonest first."""
    found = [i for provider in (api_tokens, *PROVIDERS) for i in provider(until) if i.not_after <= until]
    found.sort(key=lambda i: (i.not_after, i.key))
    return found
