"""The webhook signature: ``X-Portal-Signature: sha256=<hex HMAC-SHA256 of the raw body>``,
keyed with the channel's secret. A receiver recomputes it over the bytes it received
(before parsing them) and compares in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

HEADER = "X-Portal-Signature"
DELIVERY_HEADER = "X-Portal-Delivery"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, body), header or "")
