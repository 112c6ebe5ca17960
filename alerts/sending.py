"""One attempt to hand a message to a channel, and what came back (the delivery log's line)."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail

from . import messages, signing, targets
from .models import Channel

#: Seconds a webhook may take to answer.
TIMEOUT = 10
#: How much of an answer the log keeps.
ANSWER_CHARS = 500


@dataclass(frozen=True)
class Answer:
    ok: bool
    status: str
    text: str = ""


def opted_out() -> set[str]:
    emails = get_user_model().objects.filter(alert_opt_out__isnull=False).values_list("email", flat=True)
    return {e.strip().lower() for e in emails if e}


def send(channel: Channel, data: dict[str, Any], delivery_id: int) -> Answer:
    if channel.kind == Channel.Kind.EMAIL:
        return _email(channel, data)
    return _post(channel, data, delivery_id)


def _post(channel: Channel, data: dict[str, Any], delivery_id: int) -> Answer:
    refused = targets.refusal(channel.url)
    if refused:
        return Answer(False, "refused", refused)
    body = messages.body(data, slack=channel.kind == Channel.Kind.SLACK)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "photon-portal-alerts",
        signing.DELIVERY_HEADER: str(delivery_id),
    }
    if channel.secret:
        headers[signing.HEADER] = signing.sign(str(channel.secret), body)
    try:
        # No redirects: the signed body goes where the channel says, nowhere else.
        response = requests.post(
            channel.url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False
        )
    except requests.RequestException as exc:
        return Answer(False, "no answer", str(exc)[:ANSWER_CHARS])
    return Answer(
        200 <= response.status_code < 300, f"HTTP {response.status_code}", response.text[:ANSWER_CHARS]
    )


def _email(channel: Channel, data: dict[str, Any]) -> Answer:
    skip = opted_out()
    to = [a for a in channel.addresses() if a.lower() not in skip]
    if not to:
        return Answer(True, "nobody to send to", "every recipient opted out of alert e-mail")
    body = (
        f"{data['message']}\n\nProject: {data.get('project') or '-'}\nObject: {data.get('object') or '-'}\n"
    )
    body += f"When: {data.get('at') or '-'}\n{data['url']}\n"
    try:
        sent = send_mail(messages.subject(data), body, settings.DEFAULT_FROM_EMAIL, to, fail_silently=False)
    except smtplib.SMTPResponseException as exc:
        detail = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc)
        return Answer(False, f"SMTP {exc.smtp_code}", detail[:ANSWER_CHARS])
    except (smtplib.SMTPException, OSError) as exc:
        return Answer(False, "SMTP error", str(exc)[:ANSWER_CHARS])
    # Django's send_mail gives no server reply, only that the message was accepted.
    return Answer(sent > 0, "SMTP accepted", f"to {len(to)} recipient(s)")
