"""What an Admin does with the single sign-on settings; each change checked and audited
here (the views only translate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from directory.forms import ADMIN
from portal import access, audit
from portal.models import Project
from portal.refused import Refused

from .discovery import Discovered, DiscoveryFailed, discover
from .forms import MappingForm, ProviderForm
from .models import GroupMapping, Provider

#: What the trail keeps of the settings (never the secret: only that it changed).
_SHOWN = [
    "enabled",
    "display_name",
    "issuer",
    "client_id",
    "scopes",
    "username_claim",
    "email_claim",
    "groups_claim",
]


@dataclass
class Probe:
    ok: bool
    message: str


def the_provider() -> Provider | None:
    return Provider.objects.order_by("pk").first()


def _settings(provider: Provider | None) -> dict[str, Any] | None:
    return None if provider is None else {name: getattr(provider, name) for name in _SHOWN}


def _keep(provider: Provider, found: Discovered | None) -> None:
    provider.discovered_issuer = found.issuer if found else ""
    provider.authorization_endpoint = found.authorization_endpoint if found else ""
    provider.token_endpoint = found.token_endpoint if found else ""
    provider.userinfo_endpoint = found.userinfo_endpoint if found else ""
    provider.jwks_uri = found.jwks_uri if found else ""
    provider.token_basic_auth = found.token_basic_auth if found else True


def save_provider(actor: Any, form: ProviderForm) -> tuple[Provider, str]:
    """Save valid settings (``form.is_valid()`` was checked), discovering the issuer's
    endpoints. Enabled settings must be discoverable (Refused with the reason); disabled
    ones are saved anyway. Returns the provider and what discovery said."""
    access.require(actor, "portal.admin")
    before = _settings(the_provider()) if form.instance.pk else None
    provider: Provider = form.instance
    try:
        found: Discovered | None = discover(provider.issuer, provider.ca_certificate)
        said = found.summary() if found else ""
    except DiscoveryFailed as failed:
        if provider.enabled:
            raise Refused(f"Not saved: {failed}", field="issuer", status=400) from None
        found, said = None, f"Saved, turned off: {failed}"
    with transaction.atomic():
        provider = form.save(commit=False)
        _keep(provider, found)
        provider.save()
        after: dict[str, Any] = _settings(provider) or {}
        if "client_secret" in form.changed_data:
            after["client_secret"] = "changed"  # noqa: S105 - a word for the trail, not a secret
        audit.record("sso.provider_save", obj=provider, actor=actor, before=before, after=after)
    return provider, said


def test_provider(actor: Any, form: ProviderForm) -> Probe:
    """Discovery with the settings in the form, saved or not."""
    access.require(actor, "portal.admin")
    if not form.is_valid():
        return Probe(False, "Fix the settings marked below first.")
    try:
        found = discover(form.instance.issuer, form.instance.ca_certificate)
    except DiscoveryFailed as failed:
        return Probe(False, str(failed))
    return Probe(True, found.summary())


def add_mapping(actor: Any, provider: Provider, form: MappingForm) -> GroupMapping:
    access.require(actor, "portal.admin")
    data = form.cleaned_data
    admin = data["target"] == ADMIN
    project = None if admin else Project.objects.filter(pk=data["target"]).first()
    if not admin and project is None:
        raise Refused("That project no longer exists.", field="target", status=400)
    if provider.mappings.filter(admin=admin, project=project, group=data["group"]).exists():
        raise Refused("That group is already mapped there; remove it first to change it.", status=409)
    mapping = GroupMapping.objects.create(
        provider=provider,
        group=data["group"],
        project=project,
        role="" if admin else data["role"],
        admin=admin,
    )
    audit.record(
        "sso.mapping_add", obj=mapping, project=project, actor=actor, after={"mapping": str(mapping)}
    )
    return mapping


def remove_mapping(actor: Any, mapping: GroupMapping) -> None:
    """Removed now; the roles it gave go at each person's next sign-in."""
    access.require(actor, "portal.admin")
    with transaction.atomic():
        audit.record(
            "sso.mapping_remove",
            obj=mapping,
            project=mapping.project,
            actor=actor,
            before={"mapping": str(mapping)},
        )
        mapping.delete()
