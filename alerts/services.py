"""The alerts' rules, one function per action; the views only translate (portal.refused)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from portal import access, audit, event_kinds
from portal.models import Project
from portal.refused import Refused

from . import delivering, messages, sending, signing, targets
from .models import DEFAULT_WITHIN_DAYS, MAX_WITHIN_DAYS, Channel, Delivery, EmailOptOut, Rule

M = TypeVar("M", Channel, Rule)

_URL = URLValidator(schemes=["http", "https"])
_EMAIL = EmailValidator()


# --- who may ------------------------------------------------------------------------------


def require_scope(user: Any, project: Project | None) -> None:
    """Global channels and rules: Admins. A project's: its Project admins."""
    if project is None:
        access.require(user, "alerts.manage_global")
    else:
        access.require(user, "alerts.manage", project)


def visible_project(user: Any, pk: int) -> Project:
    # Outside a project, it does not exist: 404, not 403 (as portal.project_views).
    return get_object_or_404(access.projects(user), pk=pk)


def _managed(user: Any, queryset: QuerySet[M], pk: int) -> M:
    """A channel or rule the user may manage: another project's is a 404, a global one for a
    non-Admin too (it is not theirs to know of); a project's they only see is a 403."""
    found = get_object_or_404(queryset.select_related("project"), pk=pk)
    project: Project | None = found.project
    if project is None:
        if not access.can(user, "alerts.manage_global"):
            raise Http404("no such channel or rule")
    else:
        visible_project(user, project.pk)
        access.require(user, "alerts.manage", project)
    return found


def channel_for(user: Any, pk: int) -> Channel:
    return _managed(user, Channel.objects.all(), pk)


def rule_for(user: Any, pk: int) -> Rule:
    return _managed(user, Rule.objects.all(), pk)


def scopes(user: Any) -> list[Project | None]:
    """What the user manages: None (global) for Admins, then the projects."""
    found: list[Project | None] = [None] if access.can(user, "alerts.manage_global") else []
    return found + list(access.projects(user, "alerts.manage").order_by("name"))


# --- channels -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewChannel:
    channel: Channel
    #: The webhook secret, for this one page: never shown again.
    secret: str


def _check_target(kind: str, recipients: str, url: str) -> tuple[str, str]:
    if kind == Channel.Kind.EMAIL:
        addresses = [a.strip() for a in recipients.replace(",", "\n").splitlines() if a.strip()]
        if not addresses:
            raise Refused("An e-mail channel needs at least one address.", field="recipients", status=400)
        for address in addresses:
            try:
                _EMAIL(address)
            except ValidationError:
                raise Refused(
                    f"{address} is not an e-mail address.", field="recipients", status=400
                ) from None
        return "\n".join(addresses), ""
    if kind in (Channel.Kind.WEBHOOK, Channel.Kind.SLACK):
        try:
            _URL(url.strip())
        except ValidationError:
            raise Refused(
                "Give the http:// or https:// address to POST to.", field="url", status=400
            ) from None
        refused = targets.refusal(url.strip())
        if refused:
            raise Refused(refused, field="url", status=400)
        return "", url.strip()
    raise Refused("Choose e-mail, webhook or Slack.", field="kind", status=400)


def create_channel(
    user: Any, project: Project | None, *, kind: str, name: str, recipients: str, url: str
) -> NewChannel:
    require_scope(user, project)
    name = name.strip()
    if not name:
        raise Refused("Give the channel a name.", field="name", status=400)
    recipients, url = _check_target(kind, recipients, url)
    secret = signing.new_secret() if kind != Channel.Kind.EMAIL else ""
    channel = Channel.objects.create(
        project=project, kind=kind, name=name[:100], recipients=recipients, url=url, secret=secret
    )
    # The secret never goes into the trail: only that there is one.
    audit.record(
        "alerts.channel_create",
        obj=channel,
        project=project,
        after={
            "kind": kind,
            "name": channel.name,
            "recipients": recipients,
            "url": url,
            "signed": bool(secret),
        },
    )
    return NewChannel(channel, secret)


def delete_channel(user: Any, channel: Channel) -> None:
    require_scope(user, channel.project)
    before = {"kind": channel.kind, "name": channel.name}
    project = channel.project
    channel.delete()
    audit.record("alerts.channel_delete", project=project, before=before)


def send_test(user: Any, channel: Channel) -> Delivery:
    """One attempt now, no retries: the page shows what the channel answered."""
    require_scope(user, channel.project)
    delivery = Delivery.objects.create(channel=channel, kind="test", test=True, state=Delivery.State.SENDING)
    answer = sending.send(channel, messages.test_payload(channel.name), delivery.pk)
    delivering.record(delivery, answer)
    audit.record(
        "alerts.channel_test",
        obj=channel,
        project=channel.project,
        after={"status": answer.status, "ok": answer.ok},
    )
    return delivery


# --- rules --------------------------------------------------------------------------------


def create_rule(
    user: Any,
    project: Project | None,
    *,
    name: str,
    kinds: list[str],
    channel_ids: list[int],
    digest: bool,
    within_days: int = DEFAULT_WITHIN_DAYS,
) -> Rule:
    require_scope(user, project)
    name = name.strip()
    if not name:
        raise Refused("Give the rule a name.", field="name", status=400)
    unknown = [k for k in kinds if k not in event_kinds.KINDS]
    if not kinds or unknown:
        raise Refused("Choose one or more kinds of event from the list.", field="kinds", status=400)
    if not 1 <= within_days <= MAX_WITHIN_DAYS:
        raise Refused(
            f"Warn of an expiry between 1 and {MAX_WITHIN_DAYS} days ahead.", field="within_days", status=400
        )
    # Only the scope's own channels: an id from elsewhere is refused, never linked.
    channels = list(Channel.objects.filter(pk__in=channel_ids, project=project))
    if not channel_ids or len(channels) != len(set(channel_ids)):
        raise Refused("Choose channels of this scope only.", field="channels", status=400)
    with transaction.atomic():
        rule = Rule.objects.create(
            project=project,
            name=name[:100],
            kinds=sorted(set(kinds)),
            digest=digest,
            within_days=within_days,
        )
        rule.channels.set(channels)
        after: dict[str, Any] = {
            "name": rule.name,
            "kinds": rule.kinds,
            "channels": [c.name for c in channels],
            "digest": digest,
        }
        if event_kinds.EXPIRING in rule.kinds:  # the only kind it applies to
            after["within_days"] = within_days
        audit.record("alerts.rule_create", obj=rule, project=project, after=after)
    return rule


def delete_rule(user: Any, rule: Rule) -> None:
    require_scope(user, rule.project)
    before: dict[str, Any] = {"name": rule.name, "kinds": rule.kinds}
    if event_kinds.EXPIRING in rule.kinds:
        before["within_days"] = rule.within_days
    project = rule.project
    rule.delete()
    audit.record("alerts.rule_delete", project=project, before=before)


# --- one's own e-mail ---------------------------------------------------------------------


def set_email_opt_out(user: Any, opted_out: bool) -> None:
    access.require(user, "portal.use")
    if opted_out:
        _, made = EmailOptOut.objects.get_or_create(user=user)
        if made:
            audit.record("alerts.email_opt_out", obj=user)
    elif EmailOptOut.objects.filter(user=user).delete()[0]:
        audit.record("alerts.email_opt_in", obj=user)
