"""HTTP to one registry, the careful way: what both clients (distribution, Harbor) share.

A :class:`Transport` talks to one registry's origin and nothing else:

- every answer is read with a size cap and a deadline (a 50 MB body or a registry
  that drips bytes fails with a sentence, not a hung worker or a full memory);
- redirects are followed only within the registry's own origin, so nothing a
  registry says can send the portal (or its credentials) somewhere else;
- authentication follows the Docker token spec: a ``WWW-Authenticate: Bearer
  realm=...,service=...,scope=...`` challenge leads to the token service with
  that scope, and the token is reused until it expires (for the next request
  with the same scope it is sent up front, saving the 401 round trip); Basic
  credentials are sent up front when the registry is configured for them;
- TLS is verified against the registry's own CA when one is pinned; the
  environment's ``REQUESTS_CA_BUNDLE`` is ignored (lab notes: it would override it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter

from .errors import (
    AccessDenied,
    AuthenticationFailed,
    BadResponse,
    DeleteDisabled,
    NotFound,
    RegistryError,
    Unreachable,
)

#: Upper bound for a JSON answer (manifests are at most 4 MB in distribution;
#: a catalog page of 1,000 names or a 10,000-tag list is well under this).
MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_TOKEN_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
#: Concurrent requests per registry (detail fetches run this many at a time).
CONCURRENCY = 16
#: A token is not reused in the last seconds of its life (clock skew, slow requests).
TOKEN_MARGIN = 10.0
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
_REPOSITORY_PATH = re.compile(r"^/v2/(.+?)/(manifests|blobs|tags)/")


def timeouts() -> tuple[float, float, float]:
    """(connect, read, whole answer) in seconds; settings may shorten them (tests)."""
    read = float(settings.REGISTRY_TIMEOUT)
    return min(5.0, read), read, float(settings.REGISTRY_DEADLINE)


@dataclass
class Answer:
    """A registry's answer, read completely (within the caps)."""

    status: int
    headers: requests.structures.CaseInsensitiveDict[str]
    body: bytes
    url: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            kind = self.headers.get("Content-Type", "unknown type").split(";")[0] or "unknown type"
            hint = "HTML" if self.body.lstrip()[:1] == b"<" else kind
            raise BadResponse(
                f"the registry answered with {hint} instead of JSON (from {urlsplit(self.url).path})"
            ) from None


@dataclass
class _Token:
    value: str = field(repr=False)
    expires: float


#: Tokens by (registry identity, realm, service, scope): shared by every request in
#: this process, so a page with 50 tags asks the token service once per scope.
_tokens: dict[tuple[str, str, str, str], _Token] = {}
_tokens_lock = threading.Lock()
_fetch_locks: dict[tuple[str, str, str, str], threading.Lock] = {}
#: Requests made by every transport in this process (tests count round trips with it).
requests_made = 0
_requests_made_lock = threading.Lock()
#: Registries (by identity) that asked for Basic: credentials then go with every request.
_schemes: dict[str, str] = {}


def forget_tokens() -> None:
    with _tokens_lock:
        _tokens.clear()
        _schemes.clear()


def origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def normalize_url(url: str) -> str:
    """``https://host[:port]``: a registry lives at the root of its origin (``/v2/``, ``/api/v2.0``)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("Enter an http:// or https:// URL with a host name.")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise ValueError("Enter the registry's address only (no path): the portal adds /v2/ itself.")
    if parts.username or parts.password:
        raise ValueError("Put credentials in their own fields, not in the URL.")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _ca_file(pem: str) -> str:
    """requests wants a path: the pinned CA is written once per content under the temp dir."""
    digest = hashlib.sha256(pem.encode()).hexdigest()[:24]
    directory = Path(tempfile.gettempdir()) / "photon-portal-registry-ca"
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / f"{digest}.pem"
    if not path.exists():
        partial = path.with_suffix(f".{threading.get_ident()}.tmp")
        partial.write_text(pem)
        partial.replace(path)
    return str(path)


def guess_scope(method: str, path: str) -> str:
    """The token scope a /v2/ request will be challenged for, to send a cached token up front."""
    if path.startswith("/v2/_catalog"):
        return "registry:catalog:*"
    match = _REPOSITORY_PATH.match(path)
    if not match:
        return ""
    action = "delete" if method == "DELETE" else "pull"
    return f"repository:{match.group(1)}:{action}"


@dataclass
class Transport:
    base_url: str
    username: str = ""
    #: Never in a repr (a logged or printed Transport must not carry it).
    password: str = field(default="", repr=False)
    #: Send Basic credentials with every request (Basic registries, Harbor's API).
    basic: bool = False
    verify_tls: bool = True
    ca_pem: str = ""
    #: Requests made (for tests and benchmarks: round trips are countable, times are not).
    round_trips: int = 0
    token_fetches: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _session: requests.Session | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.base_url = normalize_url(self.base_url)
        self._origin = origin(self.base_url)
        secret = hashlib.sha256(f"{self.base_url}\0{self.username}\0{self.password}".encode()).hexdigest()
        self._identity = secret

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            session.trust_env = False  # no proxies or CA bundles from the environment
            adapter = HTTPAdapter(pool_connections=2, pool_maxsize=CONCURRENCY, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = "photon-portal"
            if self.base_url.startswith("https://"):
                session.verify = _ca_file(self.ca_pem) if self.ca_pem.strip() else self.verify_tls
            self._session = session
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _count(self, tokens: bool = False) -> None:
        global requests_made
        with _requests_made_lock:
            requests_made += 1
        with self._lock:
            self.round_trips += 1
            if tokens:
                self.token_fetches += 1

    def _basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        max_bytes: int,
        same_origin_as: tuple[str, str, int],
        token_fetch: bool = False,
    ) -> Answer:
        """One request (following same-origin redirects), its body read within caps and deadline."""
        connect, read, whole = timeouts()
        deadline = time.monotonic() + whole
        for _ in range(MAX_REDIRECTS + 1):
            self._count(tokens=token_fetch)
            try:
                response = self.session.request(
                    method, url, headers=headers, timeout=(connect, read), allow_redirects=False, stream=True
                )
            except requests.exceptions.SSLError as exc:
                raise Unreachable(f"TLS verification failed for {_host(url)}: {_short(exc)}") from None
            except requests.exceptions.Timeout:
                raise Unreachable(f"{_host(url)} did not answer within {read:g} s") from None
            except requests.exceptions.ConnectionError as exc:
                raise Unreachable(f"cannot connect to {_host(url)}: {_short(exc)}") from None
            except requests.exceptions.RequestException as exc:
                raise Unreachable(f"request to {_host(url)} failed: {_short(exc)}") from None
            with response:
                if response.is_redirect and response.headers.get("Location"):
                    target = urljoin(url, response.headers["Location"])
                    if origin(target) != same_origin_as:
                        raise BadResponse(
                            f"{_host(url)} redirected to another host ({_host(target)}); "
                            "the portal only follows redirects within the registry"
                        )
                    url = target
                    continue
                body = _read_capped(response, max_bytes, deadline, url)
                return Answer(response.status_code, response.headers, body, url)
        raise BadResponse(f"{_host(url)} redirected more than {MAX_REDIRECTS} times")

    # -- the token flow ---------------------------------------------------------------------------

    def _token_key(self, realm: str, service: str, scope: str) -> tuple[str, str, str, str]:
        return (self._identity, realm, service, scope)

    def _cached_token(self, key: tuple[str, str, str, str]) -> str | None:
        with _tokens_lock:
            token = _tokens.get(key)
            if token and token.expires > time.monotonic():
                return token.value
            _tokens.pop(key, None)
        return None

    def _fetch_token(self, challenge: dict[str, str]) -> tuple[tuple[str, str, str, str], str]:
        realm, service, scope = (
            challenge.get("realm", ""),
            challenge.get("service", ""),
            challenge.get("scope", ""),
        )
        key = self._token_key(realm, service, scope)
        cached = self._cached_token(key)
        if cached:
            return key, cached
        # Sixteen detail fetches challenged at once ask the token service once, not sixteen times.
        with _tokens_lock:
            fetching = _fetch_locks.setdefault(key, threading.Lock())
        with fetching:
            cached = self._cached_token(key)
            if cached:
                return key, cached
            return key, self._new_token(key, realm, service, scope)

    def _new_token(self, key: tuple[str, str, str, str], realm: str, service: str, scope: str) -> str:
        scheme, host, _ = origin(realm)
        own_scheme, own_host, _ = self._origin
        # The realm is the registry's word: credentials go only to a token service on the
        # registry's own host, and never downgraded from https to http.
        if (
            scheme not in {"http", "https"}
            or host != own_host
            or (own_scheme == "https" and scheme != "https")
        ):
            raise AuthenticationFailed(
                f"the registry sends clients to a token service at {_host(realm) or 'an invalid address'}, "
                f"which is not on {own_host}; the portal does not send credentials there"
            )
        params = [("service", service)] if service else []
        params += [("scope", s) for s in scope.split(" ") if s]
        url = realm + ("&" if "?" in realm else "?") + urlencode(params)
        headers = {"Accept": "application/json"}
        if self.username:
            headers["Authorization"] = self._basic_header()
        answer = self._send(
            "GET", url, headers, max_bytes=MAX_TOKEN_BYTES, same_origin_as=origin(realm), token_fetch=True
        )
        if answer.status in {401, 403}:
            raise AuthenticationFailed(
                f"the token service at {_host(realm)} refused "
                + ("the user name or password" if self.username else "anonymous access")
            )
        if answer.status != 200:
            raise RegistryError(
                f"the token service at {_host(realm)} answered {answer.status}", status=answer.status
            )
        data = answer.json()
        value = (data.get("token") or data.get("access_token")) if isinstance(data, dict) else None
        if not isinstance(value, str) or not value:
            raise BadResponse(f"the token service at {_host(realm)} answered without a token")
        try:
            lifetime = max(float(data.get("expires_in") or 60), 60.0)  # the spec's minimum
        except (TypeError, ValueError):
            lifetime = 60.0
        with _tokens_lock:
            _tokens[key] = _Token(value, time.monotonic() + lifetime - TOKEN_MARGIN)
        return value

    def pull_token(self, repository: str) -> str | None:
        """A token from the registry's token service for pulling ``repository`` and nothing
        else (scope ``repository:NAME:pull``), to hand to an engine instead of the password;
        None when the registry has no token service (Basic, or no authentication)."""
        answer = self._send(
            "GET", self.base_url + "/v2/", {}, max_bytes=MAX_JSON_BYTES, same_origin_as=self._origin
        )
        challenge = answer.headers.get("WWW-Authenticate", "")
        if answer.status != 401 or not challenge.lower().startswith("bearer"):
            return None
        params = dict(_CHALLENGE.findall(challenge))
        params["scope"] = f"repository:{repository}:pull"
        _, token = self._fetch_token(params)
        return token

    # -- the one entry point ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        max_bytes: int = MAX_JSON_BYTES,
        ok: tuple[int, ...] = (200,),
    ) -> Answer:
        """``method`` on ``path`` (relative to the registry; query included), authenticated.

        Answers with a status in ``ok`` are returned; anything else raises the
        RegistryError that says what went wrong.
        """
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError(f"not a path on the registry: {path!r}")
        url = self.base_url + path
        sent = dict(headers or {})
        basic = self.basic or _schemes.get(self._identity) == "basic"
        if basic and self.username:
            sent["Authorization"] = self._basic_header()
        guessed = guess_scope(method, urlsplit(path).path)
        guessed_key = self._token_key("", "", guessed) if guessed else None
        if guessed_key and "Authorization" not in sent:
            remembered = self._cached_token(guessed_key)
            if remembered:
                sent["Authorization"] = f"Bearer {remembered}"

        answer = self._send(method, url, sent, max_bytes=max_bytes, same_origin_as=self._origin)
        challenge = answer.headers.get("WWW-Authenticate", "")
        if answer.status == 401 and challenge.lower().startswith("basic") and self.username and not basic:
            # Learnt once per registry and process: later requests send Basic up front.
            _schemes[self._identity] = "basic"
            sent["Authorization"] = self._basic_header()
            answer = self._send(method, url, sent, max_bytes=max_bytes, same_origin_as=self._origin)
        elif answer.status == 401 and challenge.lower().startswith("bearer"):
            key, token = self._fetch_token(dict(_CHALLENGE.findall(challenge)))
            if guessed_key:
                with _tokens_lock:
                    if key in _tokens:
                        _tokens[guessed_key] = _tokens[key]
            sent["Authorization"] = f"Bearer {token}"
            answer = self._send(method, url, sent, max_bytes=max_bytes, same_origin_as=self._origin)
            if answer.status == 401:
                if guessed_key:
                    with _tokens_lock:
                        _tokens.pop(guessed_key, None)
                if not self.username:
                    raise AuthenticationFailed("the registry needs a user name and password for this")
                raise AccessDenied(
                    f"{self.username} is not allowed to do this ({_error_text(answer)})", status=401
                )
        if answer.status in ok:
            return answer
        raise error_for(answer, method, bool(self.username))


def error_for(answer: Answer, method: str, signed_in: bool) -> RegistryError:
    status, text = answer.status, _error_text(answer)
    path = urlsplit(answer.url).path
    if status == 401:
        if signed_in:
            return AuthenticationFailed("the registry refused the user name or password", status=status)
        return AuthenticationFailed("the registry needs a user name and password", status=status)
    if status == 403:
        return AccessDenied(f"not allowed by the registry ({text})", status=status)
    if status == 404:
        return NotFound(f"not found in the registry: {path}", status=status)
    if status == 405 and method == "DELETE":
        return DeleteDisabled(
            "this registry does not allow deletes (ask its operator to enable them)", status=status
        )
    if status == 429:
        return RegistryError("the registry is rate-limiting the portal; try again shortly", status=status)
    if status >= 500:
        return RegistryError(f"the registry failed with HTTP {status} ({text})", status=status)
    return RegistryError(f"the registry answered HTTP {status} ({text})", status=status)


def _error_text(answer: Answer) -> str:
    """The registry's own words: distribution and Harbor both send {"errors": [{code, message}]}."""
    try:
        data = json.loads(answer.body)
        errors = data.get("errors") if isinstance(data, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return _clip(" ".join(str(first.get(k, "")) for k in ("code", "message") if first.get(k)))
    except (ValueError, UnicodeDecodeError):
        pass
    if answer.body.lstrip()[:1] == b"<":
        return "an HTML page"
    return _clip(answer.body.decode("utf-8", "replace")) or "no details"


def _read_capped(response: requests.Response, max_bytes: int, deadline: float, url: str) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BadResponse(
            f"{_host(url)} sent {_mb(int(declared))} where at most {_mb(max_bytes)} is expected; not read"
        )
    chunks: list[bytes] = []
    size = 0
    raw = response.raw
    try:
        # read1 returns whatever has arrived (read() would wait for a whole chunk), so
        # the deadline is checked even against a registry that sends a byte at a time.
        while chunk := raw.read1(64 * 1024, decode_content=True):
            size += len(chunk)
            if size > max_bytes:
                raise BadResponse(f"{_host(url)} sent more than {_mb(max_bytes)}; stopped reading")
            if time.monotonic() > deadline:
                raise Unreachable(f"{_host(url)} is too slow: the answer took too long to arrive")
            chunks.append(chunk)
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
        raise Unreachable(f"{_host(url)} stopped sending in the middle of its answer") from None
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError, OSError):
        raise BadResponse(f"{_host(url)} cut its answer short") from None
    except urllib3.exceptions.HTTPError as exc:
        raise BadResponse(f"{_host(url)} sent a broken answer: {_short(exc)}") from None
    return b"".join(chunks)


def _host(url: str) -> str:
    return urlsplit(url).netloc


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(exc: BaseException) -> str:
    # urllib3's messages nest the whole chain; the last reason is the useful part.
    text = str(exc)
    match = re.search(r"\] ([^\]\)']+)", text) or re.search(
        r"(Connection refused|Name or service not known)", text
    )
    return _clip(match.group(1) if match else text, 160)
