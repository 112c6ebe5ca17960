"""Warnings of certificates and credentials about to lapse (portal.expiry, alerts.expiry_check):
each provider's items are found by a rule looking far enough ahead and not by one looking too
short; a project's rule hears of its own project only; each (item, rule, expiry) is told once,
across runs, and again once the item was renewed and comes near its new expiry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from alerts import expiry_check, services
from alerts.models import Channel, Delivery, ExpiryNotice, Rule
from portal import expiry
from portal.models import ApiToken, AuditEntry, Event, Project
from portal.watchers import Shard
from tests.lab import pki
from tests.queued import record_queued

pytestmark = pytest.mark.django_db

EXPIRING = "expiry.soon"


@dataclass
class Pems:
    """Certificates made here: ``soon`` lapses in 5 days, ``later`` in a year."""

    soon: str
    later: str
    make: Callable[[int], str]


@pytest.fixture
def pems(tmp_path: Path) -> Pems:
    ca = pki.CertificateAuthority.create(tmp_path / "ca", days=3650)
    made = iter(range(1000))

    def make(days: int) -> str:
        return ca.issue_client(tmp_path / "issued", f"c{next(made)}", days=days).cert.read_text()

    return Pems(soon=make(5), later=make(365), make=make)


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    return record_queued(monkeypatch)


def _rule(
    user: Any, project: Project | None, name: str, days: int, *, kinds: list[str] | None = None
) -> Rule:
    channel = services.create_channel(
        user, project, kind="webhook", name=f"{name} hook", recipients="", url="http://127.0.0.1:9/"
    ).channel
    return services.create_rule(
        user,
        project,
        name=name,
        kinds=kinds or [EXPIRING],
        channel_ids=[channel.pk],
        digest=False,
        within_days=days,
    )


def _told(rule: Rule) -> list[str]:
    """The messages of the rule's deliveries, oldest first."""
    deliveries = Delivery.objects.filter(rule=rule).order_by("created", "id")
    return [e.message for d in deliveries for e in d.events.all()]


def _host(project: Project, name: str, **pems: str) -> Any:
    from hosts.models import Host

    return Host.objects.create(
        project=project, name=name, docker_url=f"tcp://{name}.example.com:2376", **pems
    )


# One per provider: what to make so that exactly one item lapses in 5 days, and what the
# warning names. Hosts' items are their project's; the rest are global.
def _host_client_cert(p: Pems, project: Project) -> tuple[str, bool]:
    _host(project, "h-client", tls_client_cert=p.soon, tls_ca=p.later, client_ca_cert=p.later)
    return "The Docker client certificate of host h-client", True


def _host_client_ca(p: Pems, project: Project) -> tuple[str, bool]:
    _host(project, "h-ca", tls_client_cert=p.later, client_ca_cert=p.soon)
    return "The Docker client CA of host h-ca", True


def _host_engine_ca(p: Pems, project: Project) -> tuple[str, bool]:
    # A bundle lapses with its first certificate.
    _host(project, "h-engine", tls_client_cert=p.later, tls_ca=p.later + p.soon)
    return "The pinned Docker engine CA of host h-engine", True


def _vcenter(p: Pems, project: Project) -> tuple[str, bool]:
    from hosts.models import VCenter

    VCenter.objects.create(
        name="vc1", url="https://vc1.example.com", username="u", password="p", certificate=p.soon
    )
    return "The pinned certificate of vCenter vc1", False


def _registry(p: Pems, project: Project) -> tuple[str, bool]:
    from registry.models import Registry

    registry = Registry.objects.create(name="reg1", url="https://reg1.example.com", ca_certificate=p.soon)
    registry.projects.add(project)
    return "The CA certificate of registry reg1", False


def _directory(p: Pems, project: Project) -> tuple[str, bool]:
    from directory.models import DirectoryServer

    DirectoryServer.objects.create(
        enabled=True,
        url="ldaps://ldap.example.com",
        ca_certificate=p.soon,
        bind_dn="cn=x",
        bind_password="p",
        user_search_base="dc=x",
        group_search_base="dc=x",
    )
    return "The CA certificate pinned for the directory ldaps://ldap.example.com", False


def _api_token(p: Pems, project: Project) -> tuple[str, bool]:
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.get(username="manager")
    soon = timezone.now() + timedelta(days=5)
    ApiToken.objects.create(
        user=owner, name="ci", prefix="pp_ab", digest="a" * 64, expires=soon, project=project
    )
    ApiToken.objects.create(
        user=owner, name="old", prefix="pp_cd", digest="b" * 64, expires=soon, revoked=soon
    )
    return "The API token ci (pp_ab…) of manager", True


PROVIDERS = [_host_client_cert, _host_client_ca, _host_engine_ca, _vcenter, _registry, _directory, _api_token]


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda f: f.__name__.strip("_"))
def test_each_provider_is_heard_by_a_30_day_rule_and_not_by_a_3_day_one(
    provider: Any, pems: Pems, people: dict[str, Any], project: Project, queued: list[Any]
) -> None:
    what, in_project = provider(pems, project)
    owner = project if in_project else None
    far, near = _rule(people["admin"], owner, "30 days", 30), _rule(people["admin"], owner, "3 days", 3)
    made = expiry_check.run()
    assert _told(near) == []
    (said,) = _told(far)
    assert said.startswith(f"{what} expires on ") and "(in 5 days)" in said, said
    assert "Renew it: /" in said
    assert [d.rule_id for d in made] == [far.pk]
    assert queued == [("alerts.deliver", (made[0].pk,))]
    event = Event.objects.get(kind=EXPIRING)
    assert event.project_id == (project.pk if in_project else None)
    assert event.severity == Event.Severity.WARNING


def test_a_project_rule_hears_of_its_own_project_only_and_a_global_rule_of_all(
    pems: Pems, people: dict[str, Any], project: Project, other_project: Project, queued: list[Any]
) -> None:
    _host(project, "ours", tls_client_cert=pems.soon)
    _host(other_project, "theirs", tls_client_cert=pems.soon)
    from registry.models import Registry

    Registry.objects.create(
        name="shared", url="https://shared.example.com", ca_certificate=pems.soon
    ).projects.add(project)
    manager = _rule(people["manager"], project, "ours", 30)
    stranger = _rule(people["stranger"], other_project, "theirs", 30)
    everything = _rule(people["admin"], None, "all", 30)
    expiry_check.run()
    assert [m.split(" expires")[0] for m in _told(manager)] == ["The Docker client certificate of host ours"]
    assert [m.split(" expires")[0] for m in _told(stranger)] == [
        "The Docker client certificate of host theirs"
    ]
    assert sorted(m.split(" expires")[0] for m in _told(everything)) == [
        "The CA certificate of registry shared",
        "The Docker client certificate of host ours",
        "The Docker client certificate of host theirs",
    ]


def test_a_viewer_cannot_make_a_rule(
    client: Any, people: dict[str, Any], project: Project, queued: list[Any]
) -> None:
    channel = services.create_channel(
        people["admin"], project, kind="email", name="mail", recipients="a@example.com", url=""
    ).channel
    with pytest.raises(PermissionDenied):
        services.create_rule(
            people["viewer"], project, name="x", kinds=[EXPIRING], channel_ids=[channel.pk], digest=False
        )
    client.force_login(people["viewer"])
    posted = {"name": "x", "kinds": [EXPIRING], "channels": [channel.pk], "within_days": "10"}
    assert client.post(f"/alerts/projects/{project.pk}/rules/", posted).status_code == 403
    assert not Rule.objects.exists()


def test_two_runs_tell_once_and_a_renewed_item_is_told_again_when_it_comes_near(
    pems: Pems, people: dict[str, Any], project: Project, queued: list[Any]
) -> None:
    host = _host(project, "renewed", tls_client_cert=pems.soon)
    rule = _rule(people["manager"], project, "ours", 30)
    assert len(expiry_check.run()) == 1
    assert expiry_check.run() == []  # the notice is in the database: a restart reads it too
    assert len(_told(rule)) == 1 and ExpiryNotice.objects.filter(rule=rule).count() == 1
    # Renewed for a year: nothing to tell now...
    host.tls_client_cert = pems.later
    host.save()
    assert expiry_check.run() == []
    # ...and once that year is nearly over, told again (once).
    near_its_end = timezone.now() + timedelta(days=350)
    assert len(expiry_check.run(now=near_its_end)) == 1
    assert expiry_check.run(now=near_its_end) == []
    assert len(_told(rule)) == 2


def test_an_expired_certificate_is_told_as_expired(
    pems: Pems, people: dict[str, Any], project: Project, queued: list[Any]
) -> None:
    _host(project, "late", tls_client_cert=pems.soon)
    rule = _rule(people["manager"], project, "ours", 30)
    expiry_check.run(now=timezone.now() + timedelta(days=6))
    (said,) = _told(rule)
    assert " expired on " in said
    assert Event.objects.get(kind=EXPIRING).severity == Event.Severity.ERROR


def test_a_rule_without_the_kind_hears_nothing_and_other_rules_do_not_hear_these_through_routing(
    pems: Pems, people: dict[str, Any], project: Project, queued: list[Any]
) -> None:
    _host(project, "quiet", tls_client_cert=pems.soon)
    other = _rule(people["manager"], project, "hosts", 30, kinds=["host.off"])
    assert expiry_check.run() == []
    near = _rule(people["manager"], project, "3 days", 3)
    assert expiry_check.run() == []
    # The event the check records is routed by the check alone (each rule's own horizon):
    # routing it as an ordinary event would tell the 3-day rule of a 5-day expiry.
    from alerts import routing
    from portal import events

    event = events.notify("x", project=project, kind=EXPIRING)
    assert routing.route(event.pk) == []
    assert _told(other) == [] and _told(near) == []


def test_names_with_control_characters_cannot_add_lines(
    pems: Pems, people: dict[str, Any], project: Project, queued: list[Any]
) -> None:
    _host(project, "evil\nBcc: x@example.com", tls_client_cert=pems.soon)
    rule = _rule(people["manager"], project, "ours", 30)
    expiry_check.run()
    (said,) = _told(rule)
    assert "\n" not in said and "evil Bcc" in said


def test_a_digest_rule_collects_the_warnings(
    pems: Pems, people: dict[str, Any], project: Project, queued: list[Any]
) -> None:
    _host(project, "d1", tls_client_cert=pems.soon)
    _host(project, "d2", tls_client_cert=pems.soon)
    channel = services.create_channel(
        people["manager"], project, kind="slack", name="chat", recipients="", url="http://127.0.0.1:9/"
    ).channel
    rule = services.create_rule(
        people["manager"], project, name="daily", kinds=[EXPIRING], channel_ids=[channel.pk], digest=True
    )
    assert expiry_check.run() == [] and queued == []
    (digest,) = Delivery.objects.filter(rule=rule)
    assert digest.digest and digest.events.count() == 2


def test_the_rule_form_takes_the_days_shows_them_and_the_trail_has_them(
    client: Any, people: dict[str, Any], project: Project
) -> None:
    channel = services.create_channel(
        people["manager"], project, kind="email", name="mail", recipients="a@example.com", url=""
    ).channel
    client.force_login(people["manager"])
    url = f"/alerts/projects/{project.pk}/rules/"
    page = client.get(f"/alerts/projects/{project.pk}/").content.decode()
    assert 'name="within_days"' in page and "Certificate or credential expiring" in page
    for bad in ("0", "366", "soon"):
        posted = {"name": "certs", "kinds": [EXPIRING], "channels": [channel.pk], "within_days": bad}
        assert client.post(url, posted).status_code == 400, bad
    posted = {"name": "certs", "kinds": [EXPIRING], "channels": [channel.pk], "within_days": "14"}
    assert client.post(url, posted).status_code == 302
    rule = Rule.objects.get()
    assert rule.within_days == 14
    assert "(expiry: 14 days ahead)" in client.get(f"/alerts/projects/{project.pk}/").content.decode()
    entry = AuditEntry.objects.get(action="alerts.rule_create")
    assert entry.after["within_days"] == 14
    client.post(f"/alerts/rules/{rule.pk}/delete/")
    assert AuditEntry.objects.get(action="alerts.rule_delete").before["within_days"] == 14
    # The default, for a rule that did not say.
    plain = services.create_rule(
        people["manager"], project, name="d", kinds=[EXPIRING], channel_ids=[channel.pk], digest=False
    )
    assert plain.within_days == 30


def test_the_core_reads_the_earliest_not_after_and_ignores_what_is_not_a_certificate(pems: Pems) -> None:
    later, soon = expiry.not_after(pems.later), expiry.not_after(pems.soon)
    assert later is not None and soon is not None and soon < later
    assert expiry.not_after(pems.later + pems.soon) == soon
    assert expiry.not_after("") is None
    assert expiry.not_after("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n") is None


def test_channels_and_rules_of_another_scope_are_404_through_the_one_lookup(
    people: dict[str, Any], project: Project, other_project: Project
) -> None:
    from django.http import Http404

    theirs = _rule(people["stranger"], other_project, "theirs", 30)
    global_rule = _rule(people["admin"], None, "global", 30)
    mine = _rule(people["manager"], project, "mine", 30)
    for lookup, pk in ((services.rule_for, theirs.pk), (services.rule_for, global_rule.pk)):
        with pytest.raises(Http404):
            lookup(people["manager"], pk)
    assert services.rule_for(people["manager"], mine.pk) == mine
    channel = Channel.objects.get(name="mine hook")
    assert services.channel_for(people["manager"], channel.pk) == channel
    with pytest.raises(Http404):
        services.channel_for(people["manager"], Channel.objects.get(name="global hook").pk)
    with pytest.raises(PermissionDenied):  # a project they see but do not manage: 403
        services.rule_for(people["viewer"], mine.pk)


@pytest.mark.parametrize(("shard", "checks"), [(Shard(1, 2), 2), (Shard(2, 2), 0)])
def test_the_watcher_checks_at_once_then_every_interval_on_one_shard(
    settings: Any, monkeypatch: pytest.MonkeyPatch, shard: Shard, checks: int
) -> None:
    settings.ALERT_EXPIRY_INTERVAL = 1234
    ran: list[int] = []
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            raise asyncio.CancelledError

    monkeypatch.setattr(expiry_check, "run", lambda: ran.append(1))
    monkeypatch.setattr(expiry_check.asyncio, "sleep", sleep)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(expiry_check.watch_expiry(shard))
    assert (len(ran), slept) == (checks, [1234, 1234])
