"""Trust in one engine: the certificate a person confirms, the CA and client certificate
the portal presents, and the TLS context and adapter that pin them.

The client key never touches the disk (it is loaded through an anonymous
in-memory file); the pinned fingerprint is checked on every connection, whatever
``requests`` was told by the environment.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests
import requests.adapters
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hosts.fleet.endpoint import TIMEOUT, Endpoint, EngineError, unreachable

if TYPE_CHECKING:
    # requests' stubs' own names for the pool key attributes (they exist only there).
    from requests.adapters import _HostParams, _PoolKwargs

    from hosts.models import Host

    class _PinnedPoolKwargs(_PoolKwargs, total=False):
        """requests' pool keyword arguments and urllib3's pin, which requests never sets."""

        assert_fingerprint: str


@dataclass(frozen=True)
class Certificate:
    """What a person needs to decide whether to trust an engine's certificate."""

    fingerprint: str  # SHA-256, colon-separated upper-case hex, as browsers show it
    subject: str
    issuer: str
    not_after: str
    pem: str

    @classmethod
    def from_der(cls, der: bytes) -> Certificate:
        cert = x509.load_der_x509_certificate(der)
        return cls(
            fingerprint=fingerprint_of(der),
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            not_after=cert.not_valid_after_utc.strftime("%Y-%m-%d"),
            pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        )


def fingerprint_of(der: bytes) -> str:
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def normalize_fingerprint(text: str) -> str:
    hexdigits = re.sub(r"[^0-9A-Fa-f]", "", text or "").upper()
    return ":".join(hexdigits[i : i + 2] for i in range(0, len(hexdigits), 2))


def check_pem_certificates(text: str, what: str) -> None:
    """Refuse pasted text that is not PEM certificates, before anything connects."""
    try:
        x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        raise EngineError(f"The {what} is not a PEM certificate (-----BEGIN CERTIFICATE-----).") from None


def check_pem_key(text: str) -> None:
    try:
        serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        raise EngineError("The client key is not an unencrypted PEM private key.") from None


# -- trust and TLS -----------------------------------------------------------------------------------


#: The host fields ``Trust.of`` reads: a queryset that defers any of them pays a query per
#: host for it (the engines watcher reads every host every few seconds).
FIELDS = (
    "tls_ca",
    "tls_client_cert",
    "tls_client_key",
    "tls_fingerprint",
    "insecure",
    "ssh_host_key",
    "ssh_private_key",
)


@dataclass(frozen=True)
class Trust:
    """What the portal presents and expects on a connection to one engine."""

    ca: str = ""
    client_cert: str = ""
    client_key: str = field(default="", repr=False)
    fingerprint: str = ""
    insecure: bool = False
    #: For ssh:// endpoints: the host's public key line a person confirmed, and the login key.
    ssh_host_key: str = ""
    ssh_private_key: str = field(default="", repr=False)

    @classmethod
    def of(cls, host: Host) -> Trust:
        """The trust stored on ``host`` (load it with at least ``FIELDS``)."""
        return cls(
            ca=host.tls_ca or "",
            client_cert=host.tls_client_cert or "",
            client_key=str(host.tls_client_key or ""),
            fingerprint=host.tls_fingerprint or "",
            insecure=host.insecure,
            ssh_host_key=host.ssh_host_key or "",
            ssh_private_key=str(host.ssh_private_key or ""),
        )


@contextlib.contextmanager
def _in_memory_file(data: str) -> Iterator[str]:
    """A path to ``data`` that is never written to a disk: ssl can only load keys from paths."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("portal-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, data.encode())
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as handle:  # 0600, removed at once
        handle.write(data)
        handle.flush()
        yield handle.name


def ssl_context(trust: Trust) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # Host names are matched by urllib3, or replaced by the pinned fingerprint.
    context.check_hostname = False
    if trust.ca:
        try:
            context.load_verify_locations(cadata=trust.ca)
        except (ssl.SSLError, ValueError):
            raise EngineError("The CA certificate is not a valid PEM certificate.") from None
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        context.verify_mode = ssl.CERT_NONE
    if trust.client_cert or trust.client_key:
        if not (trust.client_cert and trust.client_key):
            raise EngineError("Give both the client certificate and its key, or neither.")
        with _in_memory_file(trust.client_cert) as cert_path, _in_memory_file(trust.client_key) as key_path:
            try:
                context.load_cert_chain(cert_path, key_path)
            except ssl.SSLError:
                raise EngineError("The client certificate and key do not match or are not PEM.") from None
    return context


class PinnedTLSAdapter(requests.adapters.HTTPAdapter):
    """HTTPS to one engine with our SSL context and the pinned fingerprint, whatever requests was told."""

    def __init__(self, context: ssl.SSLContext, fingerprint: str) -> None:
        self._context = context
        self._fingerprint = fingerprint.replace(":", "").lower() or None
        super().__init__(pool_connections=1, pool_maxsize=4)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: str | tuple[str, str] | None = None
    ) -> tuple[_HostParams, _PinnedPoolKwargs]:
        host_params, _ = super().build_connection_pool_key_attributes(request, False, None)
        pool_kwargs: _PinnedPoolKwargs = {
            "ssl_context": self._context,
            "cert_reqs": "CERT_REQUIRED" if self._context.verify_mode == ssl.CERT_REQUIRED else "CERT_NONE",
        }
        if self._fingerprint:
            pool_kwargs["assert_fingerprint"] = self._fingerprint
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # requests would put its own CA bundle and verify mode on the pool here.
        return None


def peer_certificate(endpoint: Endpoint, trust: Trust, timeout: float = TIMEOUT) -> Certificate:
    """The certificate the engine presents, read without trusting it, to show a person."""
    context = ssl_context(Trust(client_cert=trust.client_cert, client_key=trust.client_key))
    try:
        with (
            socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=endpoint.host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except TimeoutError:
        raise EngineError(
            f"{endpoint.host}:{endpoint.port} accepted the connection"
            f" but did not answer within {timeout:.0f} s."
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "WRONG_VERSION_NUMBER":
            raise EngineError(
                f"{endpoint.host}:{endpoint.port} does not speak TLS (a plain :2375 endpoint?)."
            ) from None
        raise EngineError(f"TLS with {endpoint.host}:{endpoint.port} failed: {exc.reason or exc}.") from None
    except OSError as exc:
        raise EngineError(unreachable(endpoint, exc)) from None
    if not der:
        raise EngineError(f"{endpoint.host}:{endpoint.port} presented no certificate.")
    return Certificate.from_der(der)
