"""Signing in at the lab's real provider, as a browser would, with requests: its login
form, then its redirects back towards the portal's callback."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

import requests

#: Where the provider sends the browser back to when the portal is Django's test client.
PORTAL = "http://testserver/"


def form_data(lab: dict[str, Any], **changes: str) -> dict[str, str]:
    """The Admin's settings form for the lab provider, enabled."""
    data = {
        "enabled": "on",
        "display_name": "Lab IdP",
        "issuer": lab["issuer"],
        "ca_certificate": lab["ca_pem"],
        "client_id": lab["client_id"],
        "client_secret": lab["client_secret"],
        "scopes": "openid profile email",
        "username_claim": "preferred_username",
        "email_claim": "email",
        "groups_claim": "groups",
    }
    data.update(changes)
    return data


def sign_in_at_provider(lab: dict[str, Any], authorize_url: str, username: str) -> str:
    """The URL the provider sends the browser back to (the portal's callback, with code and state)."""
    browser = requests.Session()
    # verify on each call: a Session's own is overridden by REQUESTS_CA_BUNDLE (requests#3829).
    page = browser.get(authorize_url, timeout=10, verify=lab["ca"])
    assert page.status_code == 200 and "provider-login" in page.text, page.text[:500]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None
    next_value = re.search(r'name="next" value="([^"]*)"', page.text)
    answer = browser.post(
        page.url,
        data={
            "username": username,
            "password": lab["users"][username]["password"],
            "csrfmiddlewaretoken": token[1],
            "next": (next_value[1] if next_value else "").replace("&amp;", "&"),
        },
        headers={"Referer": page.url},
        allow_redirects=False,
        timeout=10,
        verify=lab["ca"],
    )
    for _ in range(5):
        assert answer.status_code == 302, answer.text[:500]
        location = urljoin(answer.url, answer.headers["Location"])
        if location.startswith(PORTAL):
            return location
        answer = browser.get(location, allow_redirects=False, timeout=10, verify=lab["ca"])
    raise AssertionError("the provider never sent the browser back to the portal")
