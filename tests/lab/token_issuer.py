"""The Docker bearer-token issuer Harbor puts in front of its registry, as a lab peer.

Run as ``python -m tests.lab.token_issuer --dir DIR --port PORT --issuer ISS``.
``DIR`` holds ``root.crt``, ``signing.key`` and ``signing.crt`` (signed by the
root), ``bundle.crt`` (both certificates: the registry's ``rootcertbundle``; see
:func:`ensure_keys`) and ``users.json``
(``{"user": {"password": "...", "actions": ["pull", "push", "delete", "*"]}}``),
re-read on every request so users can be added while it runs.

``GET /service/token?service=S&scope=repository:NAME:pull,push&scope=registry:catalog:*``
with Basic auth answers ``{"token", "access_token", "expires_in", "issued_at"}``:
an RS256 JWT whose header carries ``x5c`` (signing cert, then root) and ``kid``
(the libtrust id of the signing key, as Harbor sets it).  Distribution 2.8 checks
``x5c`` against the bundle when present, else looks ``kid`` up among the bundle's
keys: both work, :meth:`Signer.token` can leave ``x5c`` out.  Each requested action is granted if the user's
``actions`` allow it.  Wrong credentials: 401.  No credentials at all: a token
that grants nothing (what Docker Hub does for a private repository), so the
registry answers 401 ``insufficient_scope`` and clients see a real denial.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

TOKEN_PATH = "/service/token"
DEFAULT_TTL = 300
ALL_ACTIONS = ("pull", "push", "delete", "*")


# -- keys ---------------------------------------------------------------------------------------


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cert(
    subject: str, key: rsa.RSAPrivateKey, issuer: str, issuer_key: rsa.RSAPrivateKey, *, ca: bool
) -> x509.Certificate:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def ensure_keys(directory: Path) -> Path:
    """Write a root CA and a signing key/cert under ``directory`` unless present; return the bundle."""
    directory.mkdir(parents=True, exist_ok=True)
    bundle = directory / "bundle.crt"
    if bundle.exists():
        return bundle
    root_key, signing_key = _new_key(), _new_key()
    root = _cert("Photon Portal lab token root", root_key, "Photon Portal lab token root", root_key, ca=True)
    signing = _cert(
        "Photon Portal lab token signer", signing_key, "Photon Portal lab token root", root_key, ca=False
    )
    key_path = directory / "signing.key"
    key_path.write_bytes(
        signing_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    (directory / "signing.crt").write_bytes(_pem(signing))
    (directory / "root.crt").write_bytes(_pem(root))
    # The signing cert is in the bundle too, for tokens that carry only a kid.  Written last: its
    # presence means the set is complete.
    bundle.write_bytes(_pem(root) + _pem(signing))
    return bundle


def write_users(directory: Path, users: dict[str, str], *, actions: tuple[str, ...] = ALL_ACTIONS) -> None:
    """Add ``users`` (name -> password) to ``users.json``, keeping the ones already there."""
    path = directory / "users.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    known.update({name: {"password": password, "actions": list(actions)} for name, password in users.items()})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(known, indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)


def libtrust_key_id(public_key: rsa.RSAPublicKey) -> str:
    """The key id docker/libtrust derives: base32 of 240 bits of SHA-256(SPKI DER), in 4-char groups."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


# -- tokens -------------------------------------------------------------------------------------


class Signer:
    def __init__(self, directory: Path):
        self.key = serialization.load_pem_private_key((directory / "signing.key").read_bytes(), password=None)
        assert isinstance(self.key, rsa.RSAPrivateKey)
        chain = [
            x509.load_pem_x509_certificate((directory / name).read_bytes())
            for name in ("signing.crt", "root.crt")
        ]
        self.x5c = [
            base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode() for cert in chain
        ]
        self.kid = libtrust_key_id(self.key.public_key())

    def token(
        self,
        *,
        issuer: str,
        service: str,
        subject: str,
        access: list[dict[str, object]],
        ttl: int = DEFAULT_TTL,
        x5c: bool = True,
    ) -> tuple[str, int]:
        """The signed JWT and its iat."""
        now = int(time.time())
        header: dict[str, object] = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        if x5c:
            header["x5c"] = self.x5c
        claims = {
            "iss": issuer,
            "sub": subject,
            "aud": service,
            "exp": now + ttl,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        signing_input = f"{_b64url(header)}.{_b64url(claims)}".encode()
        signature = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input.decode()}.{_b64url_bytes(signature)}", now


def _b64url_bytes(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url(obj: object) -> str:
    return _b64url_bytes(json.dumps(obj, separators=(",", ":")).encode())


def parse_scope(scope: str) -> dict[str, object] | None:
    """``repository:team-a/app/api:pull,push`` -> access entry; names may hold ``:`` (host:port)."""
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not (sep and sep2 and kind and name):
        return None
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


def grant(scopes: list[str], allowed: set[str]) -> list[dict[str, object]]:
    access = []
    for scope in scopes:
        entry = parse_scope(scope)
        if entry is None:
            continue
        actions = entry["actions"]
        assert isinstance(actions, list)
        entry["actions"] = [a for a in actions if a in allowed]
        access.append(entry)
    return access


# -- HTTP ---------------------------------------------------------------------------------------


class TokenServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], directory: Path, issuer: str, ttl: int):
        super().__init__(address, TokenHandler)
        self.directory = directory
        self.issuer = issuer
        self.ttl = ttl
        self.signer = Signer(directory)

    def users(self) -> dict[str, dict[str, object]]:
        path = self.directory / "users.json"
        return json.loads(path.read_text()) if path.exists() else {}


class TokenHandler(BaseHTTPRequestHandler):
    server: TokenServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return  # the registries log enough; a line per token would drown them

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != TOKEN_PATH:
            self._json(HTTPStatus.NOT_FOUND, {"errors": [{"code": "NOT_FOUND", "message": "no such path"}]})
            return
        query = parse_qs(url.query)
        service = (query.get("service") or [""])[0]
        if not service:
            self._json(
                HTTPStatus.BAD_REQUEST, {"errors": [{"code": "DENIED", "message": "service is required"}]}
            )
            return
        subject = self._authenticate()
        if subject is None:
            self._json(
                HTTPStatus.UNAUTHORIZED,
                {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                extra={"WWW-Authenticate": 'Basic realm="photon-lab-token"'},
            )
            return
        allowed = set(self.server.users().get(subject, {}).get("actions", [])) if subject else set()
        access = grant(query.get("scope", []), allowed)
        token, issued = self.server.signer.token(
            issuer=self.server.issuer, service=service, subject=subject, access=access, ttl=self.server.ttl
        )
        issued_at = datetime.fromtimestamp(issued, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._json(
            HTTPStatus.OK,
            {"token": token, "access_token": token, "expires_in": self.server.ttl, "issued_at": issued_at},
        )

    def _authenticate(self) -> str | None:
        """The user name; "" for an anonymous request; None for wrong credentials."""
        header = self.headers.get("Authorization", "")
        if not header:
            return ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            name, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        user = self.server.users().get(name)
        if user and secrets.compare_digest(str(user.get("password", "")), password):
            return name
        return None

    def _json(self, status: HTTPStatus, body: object, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="holds the keys and users.json")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--issuer", default="photon-lab-token-issuer")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL)
    parser.add_argument(
        "--user", action="append", default=[], metavar="NAME:PASSWORD", help="add a user with every action"
    )
    args = parser.parse_args(argv)
    ensure_keys(args.dir)
    if args.user:
        write_users(args.dir, dict(spec.split(":", 1) for spec in args.user))
    server = TokenServer((args.host, args.port), args.dir, args.issuer, args.ttl)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
