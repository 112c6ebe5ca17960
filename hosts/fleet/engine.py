"""The Docker Engine API of a Photon host, through the docker SDK, with pinned trust.

Every connection to a TLS engine checks what a person confirmed: the engine's
certificate must have the pinned SHA-256 fingerprint (and, when a CA was given,
chain to it); the client key never touches the disk (it is loaded through an
anonymous in-memory file). ``requests`` is told to ignore the environment,
because REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE would otherwise replace the CA given
here (lab notes). Every call has a timeout, so a host that accepts TCP and never
answers costs seconds, not a hung worker.

Errors reach people as ``EngineError`` with a sentence they can act on.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import requests

from hosts.fleet.endpoint import (
    API_VERSION,
    TIMEOUT,
    EngineError,
    netloc,
    parse_endpoint,
    short,
)
from hosts.fleet.engine_ssh import HostKey, connect_ssh, parse_host_key, parse_private_key, ssh_host_key
from hosts.fleet.trust import (
    Certificate,
    PinnedTLSAdapter,
    Trust,
    check_pem_certificates,
    check_pem_key,
    normalize_fingerprint,
    peer_certificate,
    ssl_context,
)

if TYPE_CHECKING:
    from hosts.models import Host

# -- clients ----------------------------------------------------------------------------------------


def connect(url: str, trust: Trust, *, timeout: float = TIMEOUT) -> docker.DockerClient:
    """A docker SDK client for one engine; nothing is sent until it is used."""
    endpoint = parse_endpoint(url)
    if endpoint.scheme == "ssh":
        return connect_ssh(endpoint, trust, timeout)
    tls = bool(trust.ca or trust.client_cert or trust.fingerprint)
    if not tls and not trust.insecure:
        raise EngineError(
            "This endpoint has no TLS: give the CA and client certificate, or (Admins) allow insecure."
        )
    if tls and not trust.fingerprint:
        raise EngineError("The engine's certificate fingerprint has not been confirmed.")
    scheme = "https" if tls else "http"
    base_url = f"{scheme}://{netloc(endpoint)}"
    sdk = docker.DockerClient(base_url=base_url, version=API_VERSION, timeout=timeout, tls=tls)
    sdk.api.trust_env = False  # REQUESTS_CA_BUNDLE must not replace the pinned trust
    if tls:
        sdk.api.mount("https://", PinnedTLSAdapter(ssl_context(trust), trust.fingerprint))
    return sdk


def client_for(host: Host, *, timeout: float = TIMEOUT) -> docker.DockerClient:
    return connect(host.docker_url, Trust.of(host), timeout=timeout)


def describe_error(exc: BaseException, url: str = "") -> str:
    """One sentence for whatever the SDK, requests or ssl raised."""
    if isinstance(exc, EngineError):
        return str(exc)
    text = str(exc)
    where = url or "the engine"
    if isinstance(exc, docker.errors.APIError):
        return exc.explanation or text
    if "fingerprints did not match" in text.lower():
        return f"{where} presented a certificate other than the pinned one (fingerprint mismatch)."
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f"{where}'s certificate is not signed by the given CA (certificate verify failed)."
    # An engine with --tlsverify drops a client whose certificate it does not trust
    # (an alert, or just the closed connection, depending on timing).
    refused = ("BAD_CERTIFICATE", "UNKNOWN_CA", "CERTIFICATE_REQUIRED", "bad certificate", "EOF occurred")
    if any(s in text for s in refused):
        return f"{where} refused the client certificate (it is not signed by a CA the engine trusts)."
    if isinstance(exc, requests.exceptions.SSLError) or "SSL" in text:
        return f"TLS with {where} failed: the engine refused the connection ({short(text)})."
    if isinstance(exc, requests.exceptions.ReadTimeout | requests.exceptions.ConnectTimeout | TimeoutError):
        return f"{where} did not answer within {TIMEOUT} s."
    if isinstance(exc, requests.exceptions.ConnectionError):
        if "timed out" in text.lower():
            return f"{where} did not answer within {TIMEOUT} s."
        if "Connection refused" in text:
            return f"{where} refused the connection (nothing listens on that port?)."
        if "Name or service not known" in text or "nodename nor servname" in text:
            return f"The host name of {where} does not resolve."
        return f"Cannot reach {where}: {short(text)}."
    return short(text) or type(exc).__name__


# -- facts ------------------------------------------------------------------------------------------


@dataclass
class Facts:
    """What Verify shows and the watcher keeps: the engine and the OS under it."""

    engine_id: str = ""
    hostname: str = ""
    engine_version: str = ""
    api_version: str = ""
    os_name: str = ""
    os_version: str = ""
    kernel: str = ""
    cpus: int | None = None
    memory: int | None = None
    containers_total: int = 0
    containers_running: int = 0
    images: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def facts_from_info(info: dict[str, Any], version: dict[str, Any] | None = None) -> Facts:
    version = version or {}
    return Facts(
        engine_id=str(info.get("ID") or ""),
        hostname=str(info.get("Name") or ""),
        engine_version=str(info.get("ServerVersion") or version.get("Version") or ""),
        api_version=str(version.get("ApiVersion") or ""),
        os_name=str(info.get("OperatingSystem") or ""),
        os_version=str(info.get("OSVersion") or ""),
        kernel=str(info.get("KernelVersion") or ""),
        cpus=info.get("NCPU"),
        memory=info.get("MemTotal"),
        containers_total=int(info.get("Containers") or 0),
        containers_running=int(info.get("ContainersRunning") or 0),
        images=int(info.get("Images") or 0),
    )


def read_facts(sdk: docker.DockerClient) -> Facts:
    return facts_from_info(sdk.info(), sdk.version(api_version=False))


@dataclass
class Verification:
    facts: Facts
    certificate: Certificate | None  # None for a plain (insecure) endpoint, and for ssh://
    host_key: HostKey | None = None  # the SSH host key, for ssh://


def verify(url: str, trust: Trust, *, timeout: float = TIMEOUT) -> Verification:
    """Connect as the portal will, and report what answers: Verify in the add-host form.

    With ``trust.fingerprint`` empty the engine's certificate is read first and its
    fingerprint used for this one connection, so the person can confirm it; the
    CA (when given) and the client certificate are checked in the same handshake.
    """
    endpoint = parse_endpoint(url)
    certificate = None
    host_key = None
    if endpoint.scheme == "ssh":
        if not trust.ssh_private_key:
            raise EngineError("An ssh:// endpoint needs the SSH private key of its user (SSH access, below).")
        parse_private_key(trust.ssh_private_key)
        host_key = ssh_host_key(endpoint, timeout)
        if trust.ssh_host_key and parse_host_key(trust.ssh_host_key) != parse_host_key(host_key.line):
            raise EngineError(
                f"The host now presents a different SSH key ({host_key.fingerprint}) than the one you"
                " confirmed. Verify again."
            )
        trust = Trust(ssh_host_key=host_key.line, ssh_private_key=trust.ssh_private_key)
    elif endpoint.scheme == "tcp" and not trust.insecure:
        if trust.ca:
            check_pem_certificates(trust.ca, "CA certificate")
        if trust.client_cert:
            check_pem_certificates(trust.client_cert, "client certificate")
        if trust.client_key:
            check_pem_key(trust.client_key)
        certificate = peer_certificate(endpoint, trust, timeout)
        if trust.fingerprint and normalize_fingerprint(trust.fingerprint) != certificate.fingerprint:
            raise EngineError(
                f"The engine now presents a different certificate ({certificate.fingerprint}) than the one"
                " you confirmed. Verify again."
            )
        trust = Trust(
            ca=trust.ca,
            client_cert=trust.client_cert,
            client_key=trust.client_key,
            fingerprint=certificate.fingerprint,
        )
    sdk = connect(url, trust, timeout=timeout)
    try:
        facts = read_facts(sdk)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a sentence for the person
        raise EngineError(describe_error(exc, url)) from None
    finally:
        sdk.close()
    return Verification(facts=facts, certificate=certificate, host_key=host_key)


def handshake_error(url: str, trust: Trust) -> str:
    """ "" when the engine at ``url`` answers with ``trust``, else why not (a refused
    certificate, a closed port): rotation's verification and the lab tests ask this."""
    try:
        with contextlib.closing(connect(url, trust, timeout=5)) as sdk:
            sdk.version()
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return describe_error(exc, url) or type(exc).__name__
    return ""
