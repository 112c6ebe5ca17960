"""Single sign-on tests' world: a provider row, projects whose roles its groups give, and
a stand-in provider for the tests that do not need the lab's real one: it answers the
token, key set and user info requests the backend makes, signing ID tokens with an RSA
key of its own (RS256, as a real provider does)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import mozilla_django_oidc.auth
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from portal.models import Project, Role
from sso.models import GroupMapping, Provider
from tests.lab import pki

ISSUER = "https://idp.test/o"
CLIENT_ID = "portal-client"
CLIENT_SECRET = "client secret never shown"


@pytest.fixture(autouse=True)
def unbraked(settings: Any) -> None:
    """Many sign-ins from the test client's one address: the brake has a test of its own."""
    settings.THROTTLE_SSO = "10000/60"


@pytest.fixture(scope="session")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    ca = pki.CertificateAuthority.create(Path(tmp_path_factory.mktemp("sso-ca")), "sso test CA")
    return ca.cert_path.read_text()


@pytest.fixture
def ops(db: None) -> Project:
    return Project.objects.create(name="Ops")


@pytest.fixture
def provider(db: None, ca_pem: str) -> Provider:
    """Enabled, its endpoints as discovery would have found them at the stand-in."""
    return Provider.objects.create(
        enabled=True,
        display_name="Lab IdP",
        issuer=ISSUER,
        ca_certificate=ca_pem,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        discovered_issuer=ISSUER,
        authorization_endpoint=f"{ISSUER}/authorize/",
        token_endpoint=f"{ISSUER}/token/",
        userinfo_endpoint=f"{ISSUER}/userinfo/",
        jwks_uri=f"{ISSUER}/jwks/",
    )


@pytest.fixture
def mapped(provider: Provider, ops: Project) -> Provider:
    """ops -> Provisioner in Ops; admins -> portal Admin."""
    GroupMapping.objects.create(provider=provider, group="ops", project=ops, role=Role.PROVISIONER)
    GroupMapping.objects.create(provider=provider, group="admins", admin=True)
    return provider


class _Response:
    def __init__(self, url: str, status: int, body: Any) -> None:
        self.url, self.status_code = url, status
        self.text = json.dumps(body)
        self.headers = {"content-type": "application/json"}
        self._body = body

    def json(self) -> Any:
        return self._body

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise requests.HTTPError(f"HTTP {self.status_code}", response=self)  # type: ignore[arg-type]


@dataclass
class FakeProvider:
    """What the stand-in will say next: the person (claims), and tricks for the tests."""

    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    claims: dict[str, Any] = field(default_factory=dict)
    #: Overrides of the ID token's own claims (iss, aud, nonce, ...).
    token_claims: dict[str, Any] = field(default_factory=dict)
    #: The nonce of the authorization request the browser was sent with.
    nonce: str = ""
    token_requests: list[dict[str, Any]] = field(default_factory=list)

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}

    def id_token(self) -> str:
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "sub": self.claims.get("sub", ""),
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonce,
            **self.token_claims,
        }
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": "k1"})

    # The two calls mozilla-django-oidc's backend makes through requests.
    def get(self, url: str, **kwargs: Any) -> _Response:
        assert kwargs.get("verify", "").endswith(".pem"), "verified with the pinned CA, always"
        if url.endswith("/jwks/"):
            return _Response(url, 200, self.jwks())
        if url.endswith("/userinfo/"):
            return _Response(url, 200, self.claims)
        return _Response(url, 404, {})

    def post(self, url: str, data: dict[str, Any], **kwargs: Any) -> _Response:
        assert kwargs.get("verify", "").endswith(".pem"), "verified with the pinned CA, always"
        self.token_requests.append(dict(data))
        if data.get("code") != "good-code" or not data.get("code_verifier"):
            return _Response(url, 400, {"error": "invalid_grant"})
        return _Response(
            url, 200, {"access_token": "at", "id_token": self.id_token(), "token_type": "Bearer"}
        )


@pytest.fixture
def idp(monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    fake = FakeProvider()
    monkeypatch.setattr(mozilla_django_oidc.auth, "requests", fake)
    return fake


def person(sub: str, username: str, *groups: str) -> dict[str, Any]:
    return {
        "sub": sub,
        "preferred_username": username,
        "email": f"{username}@idp.test",
        "groups": list(groups),
    }


def start(client: Any, idp: FakeProvider, next_url: str = "") -> str:
    """The browser's "Sign in with …": the state it carries (the stand-in learns the nonce)."""
    response = client.get("/sso/authenticate/" + (f"?next={next_url}" if next_url else ""))
    assert response.status_code == 302, response
    query = parse_qs(urlsplit(response["Location"]).query)
    idp.nonce = query["nonce"][0]
    return query["state"][0]


def callback(client: Any, state: str, code: str = "good-code") -> Any:
    return client.get("/sso/callback/", {"code": code, "state": state})
