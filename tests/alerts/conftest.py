"""Alerts' fixtures: people in two projects, tasks run in this process (so the settings a
test chooses, the lab's SMTP server among them, are the ones the sending uses), and a
project's e-mail and webhook channels pointed at the lab's peers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import override_settings

from alerts import services
from alerts.models import Channel, Delivery, Rule
from portal.models import Project, Role
from tests.lab import webhook_receiver

#: Small, so retries and held ONs come due within a test.
FAST = {"ALERT_RETRY_BASE": 0.2, "ALERT_DEDUP_WINDOW": 4}


@pytest.fixture
def project(db: None) -> Project:
    return Project.objects.create(name="Team A")


@pytest.fixture
def other_project(db: None) -> Project:
    return Project.objects.create(name="Team B")


@pytest.fixture
def people(make_user, project: Project, other_project: Project) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {
        "admin": make_user("root", admin=True),
        "manager": make_user("manager", project=project, role=Role.PROJECT_ADMIN),
        "viewer": make_user("viewer", project=project, role=Role.VIEWER),
        "stranger": make_user("stranger", project=other_project, role=Role.PROJECT_ADMIN),
    }


@pytest.fixture(autouse=True)
def loopback_receivers(settings: Any) -> None:
    """The lab's receivers are on loopback: allowed here (tests/conftest.py sets it for the
    processes the tests start); tests of the refusal take it back."""
    settings.ALERT_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def in_process_tasks() -> Iterator[None]:
    """Tasks on this process's threads, as the embedded default runs them, on either database."""
    from portal.celery import app

    before = app.conf.task_always_eager
    app.conf.update(task_always_eager=True)
    try:
        with override_settings(**FAST):
            yield
    finally:
        app.conf.update(task_always_eager=before)


@dataclass
class Wired:
    email: Channel
    webhook: Channel
    secret: str
    rule: Rule


def wire(
    admin: Any, project: Project, smtp: dict[str, Any], hooks: dict[str, Any], kinds: list[str]
) -> Wired:
    """An e-mail channel to the lab's SMTP server and a signed webhook to its receiver, told the secret."""
    email = services.create_channel(
        admin, project, kind="email", name="ops mail", recipients="ops@example.com", url=""
    ).channel
    made = services.create_channel(
        admin, project, kind="webhook", name="ops hook", recipients="", url=hooks["url"]
    )
    webhook_receiver.set_secret(hooks, made.secret)
    webhook_receiver.forget(hooks)
    rule = services.create_rule(
        admin, project, name="everything", kinds=kinds, channel_ids=[email.pk, made.channel.pk], digest=False
    )
    return Wired(email, made.channel, made.secret, rule)


def smtp_settings(smtp: dict[str, Any]) -> Any:
    return override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST=smtp["host"],
        EMAIL_PORT=smtp["port"],
        EMAIL_USE_TLS=False,
        EMAIL_HOST_USER="",
        EMAIL_HOST_PASSWORD="",
    )


def settled(channel: Channel) -> bool:
    """No delivery of the channel is still on its way."""
    return not Delivery.objects.filter(
        channel=channel, state__in=[Delivery.State.QUEUED, Delivery.State.SENDING, Delivery.State.RETRYING]
    ).exists()
