"""The relying party's backend: mozilla-django-oidc's, configured from the Provider row
at each sign-in (never from settings.py). It exchanges the code (with PKCE's verifier),
checks the ID token (RS256 against the provider's key set, nonce, issuer, audience) and
signs the person in through sso.accounts. In AUTHENTICATION_BACKENDS after the local
accounts and the directory, so the sessions it opens find their user; a password sign-in
never reaches the provider."""

from __future__ import annotations

import logging
from typing import Any

import jwt
import requests
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from . import accounts
from .discovery import ALGORITHM, TIMEOUT
from .models import Provider
from .tls import ca_file

log = logging.getLogger(__name__)

#: The path Django keeps in the session for people signed in here.
PATH = "sso.backend.OIDCBackend"


def current_provider() -> Provider | None:
    """The provider people may sign in with now: enabled, its endpoints discovered."""
    provider = Provider.objects.filter(enabled=True).order_by("pk").first()
    return provider if provider is not None and provider.discovered else None


def library_settings(provider: Provider) -> dict[str, Any]:
    """mozilla-django-oidc's settings, from the row (its views read the same)."""
    return {
        "OIDC_OP_AUTHORIZATION_ENDPOINT": provider.authorization_endpoint,
        "OIDC_OP_TOKEN_ENDPOINT": provider.token_endpoint,
        "OIDC_OP_USER_ENDPOINT": provider.userinfo_endpoint,
        "OIDC_OP_JWKS_ENDPOINT": provider.jwks_uri,
        "OIDC_RP_CLIENT_ID": provider.client_id,
        "OIDC_RP_CLIENT_SECRET": str(provider.client_secret or ""),
        "OIDC_RP_SIGN_ALGO": ALGORITHM,
        "OIDC_RP_IDP_SIGN_KEY": None,
        "OIDC_RP_SCOPES": provider.scopes,
        "OIDC_VERIFY_SSL": ca_file(provider.ca_certificate),
        "OIDC_TIMEOUT": TIMEOUT,
        "OIDC_PROXY": None,
        "OIDC_USE_NONCE": True,
        "OIDC_USE_PKCE": True,
        "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
        "OIDC_TOKEN_USE_BASIC_AUTH": provider.token_basic_auth,
        "OIDC_AUTHENTICATION_CALLBACK_URL": "sso:callback",
        "OIDC_REDIRECT_FIELD_NAME": "next",
        "OIDC_STORE_ACCESS_TOKEN": False,
        "OIDC_STORE_ID_TOKEN": False,
        "OIDC_ALLOW_UNSECURED_JWT": False,
        "OIDC_CREATE_USER": True,
        "OIDC_AUTH_REQUEST_EXTRA_PARAMS": {},
    }


def setting(values: dict[str, Any], attr: str, *default: Any) -> Any:
    if attr in values:
        return values[attr]
    if default:
        return default[0]
    raise ImproperlyConfigured(f"{attr}: not a setting of single sign-on")


class OIDCBackend(OIDCAuthenticationBackend):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Nothing is read here: Django makes a backend for every password sign-in and
        # every session's user lookup, which must not touch the provider's row.
        self.UserModel = get_user_model()
        self.provider: Provider | None = None
        self.values: dict[str, Any] = {}
        #: Why the last sign-in was refused, for the login page ("" when it was not).
        self.refusal = ""
        #: The claims the last sign-in was made with (ID token and user info).
        self.claims: dict[str, Any] = {}

    def get_settings(self, attr: str, *default: Any) -> Any:
        return setting(self.values, attr, *default)

    def configure(self, provider: Provider) -> None:
        self.provider = provider
        self.values = library_settings(provider)
        self.OIDC_OP_TOKEN_ENDPOINT = provider.token_endpoint
        self.OIDC_OP_USER_ENDPOINT = provider.userinfo_endpoint
        self.OIDC_OP_JWKS_ENDPOINT = provider.jwks_uri
        self.OIDC_RP_CLIENT_ID = provider.client_id
        self.OIDC_RP_CLIENT_SECRET = str(provider.client_secret or "")
        self.OIDC_RP_SIGN_ALGO = ALGORITHM
        self.OIDC_RP_IDP_SIGN_KEY = None

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        """Only the callback's code flow (``nonce`` given): a password sign-in passes by."""
        if request is None or "nonce" not in kwargs:
            return None
        self.refusal = ""
        provider = current_provider()
        if provider is None:
            self.refusal = "Single sign-on is turned off."
            return None
        self.configure(provider)
        try:
            return super().authenticate(request, **kwargs)
        except accounts.SignInRefused as refused:
            self.refusal = str(refused)
        except SuspiciousOperation as exc:
            log.warning("single sign-on refused: %s", exc)
            self.refusal = f"The provider's answer did not check out ({exc}); sign in again."
        except jwt.InvalidTokenError as exc:
            log.warning("single sign-on refused: %s", exc)
            self.refusal = f"The provider's ID token did not check out ({exc}); sign in again."
        except requests.RequestException as exc:
            log.warning("single sign-on failed: %s", exc)
            self.refusal = f"{provider.display_name} did not complete the sign-in: {_said(exc)}"
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # An answer of the wrong shape (a token response without fields, a key set that
            # is not one): refused, never a server error.
            log.warning("single sign-on: the provider's answer could not be read: %r", exc)
            self.refusal = f"{provider.display_name}'s answer could not be read; sign in again."
        return None

    def verify_token(self, token: str, **kwargs: Any) -> Any:
        """The library checks the signature (RS256, the provider's key) and the nonce; the
        issuer and audience are checked here, as OpenID Connect asks (it does not)."""
        if not token:
            raise SuspiciousOperation("no ID token in the provider's answer")
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            # Before the library looks for its key: an HS256 token would be checked with the
            # client secret, which the portal never accepts as a provider's signature.
            raise SuspiciousOperation(f"the ID token is signed with {header.get('alg')!r}, not {ALGORITHM}")
        if not header.get("kid"):
            raise SuspiciousOperation("the ID token names no key (kid) of the provider's key set")
        payload = super().verify_token(token, **kwargs)
        assert self.provider is not None
        issuer = self.provider.discovered_issuer or self.provider.issuer
        if str(payload.get("iss", "")).rstrip("/") != issuer.rstrip("/"):
            raise SuspiciousOperation(f"the ID token was issued by {payload.get('iss')!r}, not {issuer}")
        audience = payload.get("aud")
        audiences = [audience] if isinstance(audience, str) else list(audience or [])
        if self.provider.client_id not in audiences:
            raise SuspiciousOperation("the ID token is not for this portal (audience)")
        if len(audiences) > 1 and payload.get("azp") != self.provider.client_id:
            raise SuspiciousOperation("the ID token was given to another party (azp)")
        if "exp" not in payload:
            raise SuspiciousOperation("the ID token has no expiry")
        return payload

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The ID token's claims with the user info endpoint's over them (same subject only)."""
        if not self.OIDC_OP_USER_ENDPOINT:
            return dict(payload)
        info = super().get_userinfo(access_token, id_token, payload)
        if str(info.get("sub")) != str(payload.get("sub")):
            # Raised as a refusal: the library would swallow a SuspiciousOperation here.
            raise accounts.SignInRefused(
                "The provider's user info is about someone else than its ID token; sign in again."
            )
        return {**payload, **info}

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        assert self.provider is not None
        self.claims = self.get_userinfo(access_token, id_token, payload)
        return accounts.sign_in(self.provider, self.claims)

    def get_user(self, user_id: int) -> Any:
        # The session's user, from the database: the provider is not asked on every request.
        user = self.UserModel._default_manager.filter(pk=user_id).first()
        return user if user is not None and user.is_active else None


def _said(exc: requests.RequestException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS with it failed (its certificate is not signed by the pinned CA)."
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return "it did not answer."
    if response is not None:
        try:
            error = response.json().get("error", "")
        except ValueError:
            error = ""
        return f"it answered HTTP {response.status_code}{f' ({error})' if error else ''}."
    return "its answer could not be read."
