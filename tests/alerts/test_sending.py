"""Alerts reach the lab's real peers: a host going OFF (a lab engine stopped, the engines
watcher noticing) mails the lab SMTP server and POSTs a signed webhook; a flapping host
sends at most its first OFF and last ON; a failing receiver is retried, as the log shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from alerts.models import Delivery
from hosts.fleet import status
from hosts.models import Host, HostStatus
from portal.models import Project
from tests.alerts.conftest import FAST, settled, smtp_settings, wire
from tests.hosts.conftest import trusted_host
from tests.hosts.watching import kill_dockerd, running_watcher
from tests.lab import engines, smtp, webhook_receiver
from tests.lab.common import wait_until
from tests.lab.fixtures import start

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def private_engine(tmp_path: Path, lab_engines: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    """An engine of this test's own to stop (the session's are shared)."""
    workdir = tmp_path / "engines"
    (engine_info,) = start(lambda: engines.up(workdir, plain=1, tls=0))
    yield workdir, engine_info
    engines.down(workdir)


def _mails_about(lab_smtp: dict[str, Any], name: str) -> list[Any]:
    return [m for m in smtp.messages(lab_smtp) if name in str(m["Subject"])]


@pytest.mark.timeout(180)
def test_an_engine_stopping_sends_one_mail_and_one_signed_webhook(
    private_engine: Any,
    project: Project,
    people: dict[str, Any],
    lab_smtp: Any,
    lab_webhooks: Any,
    in_process_tasks: None,
) -> None:
    workdir, info = private_engine
    wired = wire(people["admin"], project, lab_smtp, lab_webhooks, ["host.off", "host.on"])
    host = trusted_host(info, project, "doomed-mail")
    with smtp_settings(lab_smtp), running_watcher(interval=1.0):
        wait_until(lambda: Host.objects.get(pk=host.pk).status == HostStatus.ON, timeout=20, what="ON")
        kill_dockerd(workdir, info["name"])
        wait_until(
            lambda: _mails_about(lab_smtp, "doomed-mail") and webhook_receiver.received(lab_webhooks),
            timeout=30,
            what="a mail and a webhook about the host going OFF",
        )
        wait_until(
            lambda: settled(wired.email) and settled(wired.webhook), timeout=15, what="nothing left to send"
        )
    (mail,) = _mails_about(lab_smtp, "doomed-mail")
    assert "Host went OFF" in str(mail["Subject"]) and "ops@example.com" in str(mail["X-Lab-Rcpt-To"])
    (hook,) = webhook_receiver.received(lab_webhooks)
    assert hook["signature_ok"], hook["headers"]
    body = json.loads(hook["body"])
    assert (body["kind"], body["project"], body["severity"]) == ("host.off", "Team A", "error")
    assert set(body) == {"kind", "message", "severity", "project", "object", "at", "url"}
    delivery = Delivery.objects.get(channel=wired.webhook)
    assert hook["headers"]["X-Portal-Delivery"] == str(delivery.pk)


@pytest.mark.timeout(120)
def test_a_host_flapping_ten_times_sends_at_most_its_first_off_and_last_on(
    project: Project, people: dict[str, Any], lab_smtp: Any, lab_webhooks: Any, in_process_tasks: None
) -> None:
    wired = wire(people["admin"], project, lab_smtp, lab_webhooks, ["host.off", "host.on"])
    host = Host.objects.create(project=project, name="flappy", docker_url="tcp://127.0.0.1:9", insecure=True)
    with smtp_settings(lab_smtp):
        for _ in range(10):  # the watcher's own path: checks failing, then one answering
            for _ in range(status.OFF_AFTER):
                status.record_failure(host, "connection refused")
            status.record_success(host)
        # The held ON comes due when the OFF's window (ALERT_DEDUP_WINDOW, 4 s here) ends.
        wait_until(
            lambda: settled(wired.webhook) and settled(wired.email), timeout=60, what="the held ON sent"
        )
    kinds = [json.loads(r["body"])["kind"] for r in webhook_receiver.received(lab_webhooks)]
    assert kinds == ["host.off", "host.on"]
    assert [str(m["Subject"]).split(" (")[0] for m in _mails_about(lab_smtp, "flappy")] == [
        "[Photon Portal] Host went OFF",
        "[Photon Portal] Host back ON",
    ]


@pytest.mark.timeout(120)
def test_a_receiver_answering_500_is_retried_and_the_log_shows_both(
    client: Any,
    project: Project,
    people: dict[str, Any],
    lab_smtp: Any,
    lab_webhooks: Any,
    celery_worker_if_brokered: None,
) -> None:
    """Through a real `celery worker` with a broker (REDIS_URL), in-process on the embedded
    default: the retry's countdown is the broker's, or a timer's. The retry delay travels on
    the delivery row (ALERT_RETRY_BASE when it was queued), so the worker follows this test's."""
    wired = wire(people["admin"], project, lab_smtp, lab_webhooks, ["drift.found"])
    webhook_receiver.fail_next(lab_webhooks, 2)
    host = Host.objects.create(project=project, name="drifty", docker_url="tcp://127.0.0.1:9", insecure=True)
    from portal import events

    with override_settings(**FAST):
        events.notify("drifty drifted", obj=host, project=project, kind="drift.found", severity="warning")
        wait_until(lambda: settled(wired.webhook), timeout=60, what="the webhook delivered")
    delivery = Delivery.objects.get(channel=wired.webhook)
    assert (delivery.state, delivery.attempts) == (Delivery.State.SENT, 3)
    assert [a["status"] for a in delivery.log] == ["HTTP 500", "HTTP 500", "HTTP 200"]
    assert [r["answered"] for r in webhook_receiver.received(lab_webhooks)] == [500, 500, 200]
    client.force_login(people["manager"])
    page = client.get(f"/alerts/channels/{wired.webhook.pk}/").content.decode()
    assert "lab receiver: failing on purpose" in page
    assert page.index("HTTP 500") < page.index("HTTP 200")
