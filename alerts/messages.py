"""What a delivery says: the webhook's JSON, Slack's text, the e-mail's subject and body."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.urls import reverse

from portal import event_kinds
from portal.models import Event


def _events_url() -> str:
    # No request here (a task): the configured public address, else the path alone.
    base = getattr(settings, "PORTAL_BASE_URL", "") or ""
    return base.rstrip("/") + reverse("events")


def payload(event: Event, *, count: int = 1) -> dict[str, Any]:
    message = event.message if count == 1 else f"{event.message} (and {count - 1} more like it)"
    return {
        "kind": event.kind,
        "message": message,
        "severity": event.severity,
        "project": event.project.name if event.project_id and event.project else None,
        "object": event.object_repr,
        "at": event.at.isoformat(),
        "url": _events_url(),
    }


def digest_payload(events: list[Event]) -> dict[str, Any]:
    lines = [f"{e.at:%Y-%m-%d %H:%M} [{event_kinds.label(e.kind)}] {e.message}" for e in events]
    return {
        "kind": "digest",
        "message": f"{len(events)} events:\n" + "\n".join(lines),
        "severity": "info",
        "project": None,
        "object": "",
        "at": events[-1].at.isoformat() if events else "",
        "url": _events_url(),
    }


def test_payload(channel_name: str) -> dict[str, Any]:
    return {
        "kind": "test",
        "message": f"A test from Photon Portal to the channel {channel_name}.",
        "severity": "info",
        "project": None,
        "object": "",
        "at": "",
        "url": _events_url(),
    }


def text(data: dict[str, Any]) -> str:
    where = f" ({data['object']})" if data.get("object") else ""
    return (
        f"{event_kinds.label(data['kind']) if data['kind'] != 'test' else 'Test'}{where}: {data['message']}"
    )


def body(data: dict[str, Any], *, slack: bool) -> bytes:
    shown = {"text": text(data) + f"\n{data['url']}"} if slack else data
    return json.dumps(shown, sort_keys=True).encode()


def subject(data: dict[str, Any]) -> str:
    return f"[Photon Portal] {text(data)}"[:200].replace("\n", " ")
