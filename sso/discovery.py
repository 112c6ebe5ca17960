"""Issuer discovery: ``<issuer>/.well-known/openid-configuration`` read over TLS verified
with the pinned CA, checked (it names the same issuer, an authorization code flow, RS256
ID tokens) and its endpoints kept; or one sentence saying exactly why not."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import requests

from .tls import ca_file

#: Seconds to connect and to read: a provider that does not answer must not hold the page.
TIMEOUT = (5, 10)
ALGORITHM = "RS256"
#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and _IP_ADDRESS_MISMATCH; _CERT_HAS_EXPIRED, _NOT_YET_VALID.
_WRONG_NAME = {62, 64}
_EXPIRED, _NOT_YET = 10, 9


class DiscoveryFailed(Exception):
    """Discovery did not find a usable OpenID Connect issuer (the sentence says why)."""


@dataclass(frozen=True)
class Discovered:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    token_basic_auth: bool

    def summary(self) -> str:
        return (
            f"Found the OpenID Connect issuer {self.issuer}: authorization {self.authorization_endpoint}, "
            f"token {self.token_endpoint}, keys {self.jwks_uri}"
            + (f", user info {self.userinfo_endpoint}" if self.userinfo_endpoint else "")
            + "."
        )


def well_known(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: requests wraps urllib3's error, which wraps ssl's."""
    found: list[BaseException] = []
    todo = [exc]
    while todo and len(found) < 20:
        current = todo.pop()
        found.append(current)
        inner = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        todo += [e for e in inner if isinstance(e, BaseException) and e not in found]
    return found


def _tls_reason(exc: BaseException) -> str:
    """The certificate problem inside a requests SSLError, as words."""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            message = cause.verify_message or str(cause)
            if cause.verify_code in _WRONG_NAME:
                return "its certificate is not for that host name (use the name in its certificate)"
            if cause.verify_code in {_EXPIRED, _NOT_YET}:
                return "its certificate is expired or not yet valid"
            return f"its certificate is not signed by the pinned CA certificate (untrusted: {message})"
    return "the TLS handshake failed"


def fetch_json(url: str, ca_pem: str, what: str) -> Any:
    """GET ``url`` verified with the pinned CA; its JSON, or DiscoveryFailed with the reason."""
    try:
        response = requests.get(url, verify=ca_file(ca_pem), timeout=TIMEOUT, allow_redirects=False)
    except requests.exceptions.SSLError as exc:
        raise DiscoveryFailed(f"TLS with {url} failed: {_tls_reason(exc)}.") from None
    except requests.exceptions.Timeout:
        raise DiscoveryFailed(f"{url} did not answer in time.") from None
    except requests.exceptions.ConnectionError:
        raise DiscoveryFailed(f"Could not reach {url}: nothing answered there.") from None
    except requests.exceptions.RequestException as exc:
        raise DiscoveryFailed(f"Could not read {url}: {exc}.") from None
    if response.status_code != 200:
        raise DiscoveryFailed(
            f"{url} answered HTTP {response.status_code}, not the {what}: this is not an OpenID Connect "
            "issuer (check the issuer URL)."
        )
    try:
        return response.json()
    except ValueError:
        raise DiscoveryFailed(
            f"{url} did not answer JSON: this is not an OpenID Connect issuer (check the issuer URL)."
        ) from None


def discover(issuer: str, ca_pem: str) -> Discovered:
    """Read and check the issuer's discovery document (raises DiscoveryFailed)."""
    url = well_known(issuer)
    document = fetch_json(url, ca_pem, "discovery document")
    if not isinstance(document, dict) or "issuer" not in document:
        raise DiscoveryFailed(f"{url} is not an OpenID Connect discovery document (it names no issuer).")
    if str(document["issuer"]).rstrip("/") != issuer.rstrip("/"):
        raise DiscoveryFailed(
            f"Issuer mismatch: the provider at {url} calls itself {document['issuer']}, not {issuer}. "
            "Enter the issuer URL exactly as the provider names it."
        )
    missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not document.get(k)]
    if missing:
        raise DiscoveryFailed(f"The discovery document of {issuer} lacks {', '.join(missing)}.")
    algorithms = document.get("id_token_signing_alg_values_supported") or [ALGORITHM]
    if ALGORITHM not in algorithms:
        offered = ", ".join(map(str, algorithms))
        raise DiscoveryFailed(f"The provider signs ID tokens with {offered}; the portal needs {ALGORITHM}.")
    if "code" not in (document.get("response_types_supported") or ["code"]):
        raise DiscoveryFailed("The provider does not offer the authorization code flow (response type code).")
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if "client_secret_basic" not in methods and "client_secret_post" not in methods:
        raise DiscoveryFailed(
            "The provider takes no client secret at its token endpoint (client_secret_basic or _post)."
        )
    found = Discovered(
        issuer=str(document["issuer"]),
        authorization_endpoint=str(document["authorization_endpoint"]),
        token_endpoint=str(document["token_endpoint"]),
        userinfo_endpoint=str(document.get("userinfo_endpoint") or ""),
        jwks_uri=str(document["jwks_uri"]),
        token_basic_auth="client_secret_basic" in methods,
    )
    keys = fetch_json(found.jwks_uri, ca_pem, "key set")
    if not isinstance(keys, dict) or not any(
        isinstance(k, dict) and k.get("kty") == "RSA" for k in keys.get("keys") or []
    ):
        raise DiscoveryFailed(
            f"The key set at {found.jwks_uri} holds no RSA key to check {ALGORITHM} tokens with."
        )
    return found
