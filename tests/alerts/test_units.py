"""Signing, and dedup's rule (alerts.routing), with the sending recorded instead of done."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from alerts import routing, services, signing
from alerts.models import Delivery
from hosts.models import Host
from portal import events
from portal.models import Event, Project
from tests.queued import record_queued


def test_a_signature_is_the_hmac_of_the_body_and_only_that_body() -> None:
    body = b'{"kind": "host.off"}'
    header = signing.sign("s3cret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert signing.verify("s3cret", body, header)
    assert not signing.verify("s3cret", body + b" ", header)
    assert not signing.verify("other", body, header)
    assert not signing.verify("s3cret", body, "")


@pytest.fixture
def wired(people: dict[str, Any], project: Project, monkeypatch: pytest.MonkeyPatch) -> Any:
    sent = record_queued(monkeypatch)
    # Held deliveries are scheduled, not sent, here.
    scheduled: list[tuple[int, float]] = []
    monkeypatch.setattr(routing.tasks, "schedule", lambda pk, delay: scheduled.append((pk, delay)))
    hook = services.create_channel(
        people["admin"], project, kind="webhook", name="hook", recipients="", url="http://127.0.0.1:9/"
    ).channel
    services.create_rule(
        people["admin"],
        project,
        name="hosts",
        kinds=["host.off", "host.on"],
        channel_ids=[hook.pk],
        digest=False,
    )
    host = Host.objects.create(project=project, name="h1", docker_url="tcp://127.0.0.1:9", insecure=True)
    return sent, scheduled, hook, host


def _event(host: Host, kind: str) -> Event:
    event = events.notify(f"{host.name} {kind}", obj=host, project=host.project_id, kind=kind)
    routing.route(event.pk)  # what the commit would do (a django_db test never commits)
    return event


@pytest.mark.django_db
@override_settings(ALERT_DEDUP_WINDOW=600)
def test_the_same_kind_and_object_in_the_window_sends_once(wired: Any) -> None:
    sent, _, hook, host = wired
    for _ in range(3):
        _event(host, "host.off")
    (delivery,) = Delivery.objects.filter(channel=hook)
    assert delivery.events.count() == 3
    assert [args for name, args in sent if name == "alerts.deliver"] == [(delivery.pk,)]


@pytest.mark.django_db
@override_settings(ALERT_DEDUP_WINDOW=600)
def test_a_flapping_host_sends_its_first_off_at_once_and_holds_its_on_to_the_windows_end(wired: Any) -> None:
    sent, scheduled, hook, host = wired
    for _ in range(10):
        _event(host, "host.off")
        _event(host, "host.on")
    off, on = Delivery.objects.filter(channel=hook).order_by("created")
    assert (off.kind, off.events.count(), on.kind, on.events.count()) == ("host.off", 10, "host.on", 10)
    assert [args for name, args in sent if name == "alerts.deliver"] == [(off.pk,)]
    assert [pk for pk, _ in scheduled] == [on.pk]
    assert on.due == off.created + timedelta(seconds=600)


@pytest.mark.django_db
def test_events_without_a_kind_or_without_a_rule_make_no_delivery(wired: Any, other_project: Project) -> None:
    host = wired[3]
    routing.route(events.notify("just logged", obj=host, project=host.project_id).pk)
    routing.route(events.notify("elsewhere", project=other_project, kind="host.off").pk)
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_whoever_opted_out_gets_no_alert_mail(
    people: dict[str, Any], project: Project, mailoutbox: Any
) -> None:
    from alerts import messages, sending
    from alerts.models import EmailOptOut

    people["viewer"].email = "Viewer@Example.com"
    people["viewer"].save()
    EmailOptOut.objects.create(user=people["viewer"])
    channel = services.create_channel(
        people["admin"],
        project,
        kind="email",
        name="mail",
        recipients="viewer@example.com, b@example.com",
        url="",
    ).channel
    answer = sending.send(channel, messages.test_payload("mail"), 1)
    assert answer.ok
    (mail,) = mailoutbox
    assert mail.to == ["b@example.com"]


@pytest.mark.django_db
def test_a_digest_rule_collects_its_events_and_sends_them_as_one_message_when_due(
    people: dict[str, Any], project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alerts import delivering, sending

    queued = record_queued(monkeypatch)
    said: list[dict[str, Any]] = []
    monkeypatch.setattr(
        sending, "send", lambda channel, data, pk: said.append(data) or sending.Answer(True, "HTTP 200")
    )
    hook = services.create_channel(
        people["admin"], project, kind="slack", name="chat", recipients="", url="http://127.0.0.1:9/"
    ).channel
    services.create_rule(
        people["admin"], project, name="daily", kinds=["drift.found"], channel_ids=[hook.pk], digest=True
    )
    host = Host.objects.create(project=project, name="h1", docker_url="tcp://127.0.0.1:9", insecure=True)
    for n in range(3):
        routing.route(events.notify(f"drift {n}", obj=host, project=project, kind="drift.found").pk)
    (digest,) = Delivery.objects.filter(channel=hook)
    assert digest.digest and digest.events.count() == 3 and queued == []
    assert routing.send_due(now=digest.due - timedelta(seconds=1)) == []
    assert routing.send_due(now=digest.due) == [digest.pk]
    assert queued == [("alerts.deliver", (digest.pk,))]
    Delivery.objects.filter(pk=digest.pk).update(due=timezone.now())  # its time came
    delivering.deliver(digest.pk)
    (data,) = said
    assert data["kind"] == "digest" and "drift 0" in data["message"] and "drift 2" in data["message"]
    digest.refresh_from_db()
    assert digest.state == Delivery.State.SENT


@pytest.mark.django_db
@override_settings(ALERT_RETRY_TRIES=5)
def test_a_failing_send_backs_off_three_times_longer_each_time_then_gives_up(
    people: dict[str, Any], project: Project
) -> None:
    from alerts import delivering, sending

    hook = services.create_channel(
        people["admin"], project, kind="webhook", name="hook", recipients="", url="http://127.0.0.1:9/"
    ).channel
    delivery = Delivery.objects.create(channel=hook, kind="host.off", retry_base=10)
    delays = []
    for _ in range(5):
        delivering.record(delivery, sending.Answer(False, "HTTP 500", "x" * 600))
        if delivery.state == Delivery.State.RETRYING:
            delays.append(delivering.retry_delay(delivery).total_seconds())
    assert delays == [10, 30, 90, 270]
    assert (delivery.state, delivery.attempts, len(delivery.log)) == (Delivery.State.FAILED, 5, 5)


@pytest.mark.django_db
@override_settings(ALERT_DEDUP_WINDOW=600)
def test_back_on_after_an_off_is_told_even_when_an_on_was_sent_earlier_in_the_window(wired: Any) -> None:
    sent, scheduled, hook, host = wired
    _event(host, "host.on")  # no OFF before it: sent at once
    _event(host, "host.off")
    _event(host, "host.on")  # after that OFF: held to the OFF's window end, not folded into the first ON
    first_on, off, held_on = Delivery.objects.filter(channel=hook).order_by("created")
    assert (first_on.kind, off.kind, held_on.kind) == ("host.on", "host.off", "host.on")
    assert [args for name, args in sent if name == "alerts.deliver"] == [(first_on.pk,), (off.pk,)]
    assert [pk for pk, _ in scheduled] == [held_on.pk]
