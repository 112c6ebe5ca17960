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

import base64
import binascii
import contextlib
import hashlib
import io
import ipaddress
import os
import re
import socket
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import docker
import docker.errors
import paramiko
import requests
import requests.adapters
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from docker.transport.sshconn import SSHHTTPAdapter

if TYPE_CHECKING:
    from hosts.models import Host

#: Seconds for connecting and for each answer: a dead or silent host fails within this.
TIMEOUT = 5
#: The API version we speak unless the engine only speaks an older one.
API_VERSION = "1.41"
INSECURE_PORT = 2375


class EngineError(Exception):
    """Something a person can act on: unreachable, refused, untrusted, bad input."""


class EndpointError(EngineError):
    """The Docker endpoint URL itself is malformed."""


@dataclass(frozen=True)
class Endpoint:
    scheme: str  # "tcp" or "ssh"
    host: str
    port: int
    user: str = ""

    @property
    def is_tls_port(self) -> bool:
        return self.scheme == "tcp" and self.port != INSECURE_PORT


_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_endpoint(url: str) -> Endpoint:
    """``tcp://host:port`` or ``ssh://user@host[:port]``, or EndpointError saying what is wrong."""
    url = (url or "").strip()
    if not url:
        raise EndpointError("Enter the Docker endpoint, e.g. tcp://photon-01.example.com:2376.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise EndpointError(f"{url!r} is not a valid URL (check the port).") from None
    if parts.scheme not in {"tcp", "ssh"}:
        raise EndpointError("The Docker endpoint must start with tcp:// (TLS, port 2376) or ssh://.")
    host = parts.hostname or ""
    if not host or not (_is_ip(host) or _HOST_RE.match(host)):
        raise EndpointError(f"{url!r} has no valid host name.")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise EndpointError("The Docker endpoint is only scheme://host:port, without a path.")
    if parts.scheme == "tcp":
        if port is None:
            raise EndpointError("Give the port: tcp://HOST:2376 for TLS.")
        if parts.username:
            raise EndpointError("A tcp:// endpoint takes no user name.")
        return Endpoint("tcp", host, port)
    if not parts.username:
        raise EndpointError("An ssh:// endpoint needs a user: ssh://USER@HOST.")
    return Endpoint("ssh", host, port or 22, parts.username)


# -- certificates --------------------------------------------------------------------------------


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
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, _ = super().build_connection_pool_key_attributes(request, False, None)
        pool_kwargs: dict[str, Any] = {
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
        raise EngineError(_unreachable(endpoint, exc)) from None
    if not der:
        raise EngineError(f"{endpoint.host}:{endpoint.port} presented no certificate.")
    return Certificate.from_der(der)


def _unreachable(endpoint: Endpoint, exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"Cannot reach {endpoint.host}:{endpoint.port}: {reason}."


# -- SSH transport ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostKey:
    """What a person needs to decide whether to trust a host's SSH key."""

    line: str  # "ssh-ed25519 AAAA...", as stored in Host.ssh_host_key
    fingerprint: str  # "SHA256:...", as ssh-keygen -l and ssh show it

    @property
    def kind(self) -> str:
        return self.line.split(" ", 1)[0]

    @classmethod
    def of(cls, key: paramiko.PKey) -> HostKey:
        digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
        return cls(line=f"{key.get_name()} {key.get_base64()}", fingerprint=f"SHA256:{digest}")


def parse_host_key(line: str) -> paramiko.PKey:
    """A stored ``type base64`` public key line, or EngineError."""
    kind, _, rest = (line or "").strip().partition(" ")
    blob = rest.strip().split(" ", 1)[0]
    try:
        return paramiko.PKey.from_type_string(kind, base64.b64decode(blob, validate=True))
    except (ValueError, TypeError, binascii.Error, paramiko.SSHException):
        raise EngineError("The pinned SSH host key cannot be read: verify the host again.") from None


def parse_private_key(text: str) -> paramiko.PKey:
    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return kind.from_private_key(io.StringIO(text.strip() + "\n"))
        except (ValueError, TypeError, IndexError, paramiko.SSHException):
            continue
    raise EngineError("The SSH private key is not an unencrypted private key (OpenSSH or PEM).")


def ssh_host_key(endpoint: Endpoint, timeout: float = TIMEOUT) -> HostKey:
    """The key the SSH server presents, read before any login, to show a person.

    The pinned key's type is asked for first, so a host that has several keys presents
    the same one it did at Verify (ssh-ed25519 is paramiko's first choice).
    """
    try:
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except TimeoutError:
        raise EngineError(f"{endpoint.host}:{endpoint.port} did not answer within {timeout:.0f} s.") from None
    except OSError as exc:
        raise EngineError(_unreachable(endpoint, exc)) from None
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        return HostKey.of(transport.get_remote_server_key())
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise EngineError(
            f"{endpoint.host}:{endpoint.port} did not complete an SSH handshake within {timeout:.0f} s"
            f" ({_short(str(exc)) or type(exc).__name__})."
        ) from None
    finally:
        transport.close()


class PinnedSSHAdapter(SSHHTTPAdapter):
    """The docker SDK's SSH transport (``docker system dial-stdio`` on the host), trusting only
    the pinned host key: no ~/.ssh/known_hosts, no ~/.ssh/config, no agent, no auto-add."""

    def __init__(
        self, endpoint: Endpoint, host_key: paramiko.PKey, private_key: paramiko.PKey, timeout: float
    ):
        self._endpoint = endpoint
        self._host_key = host_key
        self._private_key = private_key
        self._connect_timeout = timeout
        super().__init__(f"ssh://{endpoint.user}@{_netloc(endpoint)}", timeout=timeout, max_pool_size=4)

    def _create_paramiko_client(self, base_url: str) -> None:
        client = paramiko.SSHClient()
        at = self._endpoint
        name = at.host if at.port == 22 else f"[{at.host}]:{at.port}"
        client.get_host_keys().add(name, self._host_key.get_name(), self._host_key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        self.ssh_client = client
        self.ssh_params = {
            "hostname": self._endpoint.host,
            "port": self._endpoint.port,
            "username": self._endpoint.user,
            "pkey": self._private_key,
            "look_for_keys": False,
            "allow_agent": False,
            "timeout": self._connect_timeout,
            "banner_timeout": self._connect_timeout,
            "auth_timeout": self._connect_timeout,
            "channel_timeout": self._connect_timeout,
        }


def _connect_ssh(endpoint: Endpoint, trust: Trust, timeout: float) -> docker.DockerClient:
    if not trust.ssh_host_key:
        raise EngineError("The host's SSH key has not been confirmed: Verify, then confirm its fingerprint.")
    if not trust.ssh_private_key:
        raise EngineError("An ssh:// endpoint needs the SSH private key of its user.")
    host_key = parse_host_key(trust.ssh_host_key)
    private_key = parse_private_key(trust.ssh_private_key)
    where = f"{endpoint.user}@{endpoint.host}:{endpoint.port}"
    try:
        adapter = PinnedSSHAdapter(endpoint, host_key, private_key, timeout)
    except paramiko.BadHostKeyException:
        raise EngineError(
            f"{where} presented an SSH host key other than the pinned one (a different machine, or a"
            " reinstall): refused."
        ) from None
    except paramiko.AuthenticationException:
        raise EngineError(
            f"{where} refused the SSH key (it is not authorized for {endpoint.user})."
        ) from None
    except TimeoutError:
        raise EngineError(f"{where} did not answer within {timeout:.0f} s.") from None
    except (paramiko.SSHException, EOFError) as exc:
        raise EngineError(f"SSH with {where} failed: {_short(str(exc)) or type(exc).__name__}.") from None
    except OSError as exc:
        raise EngineError(_unreachable(endpoint, exc)) from None
    # An SDK client built for a placeholder URL, then given the pinned transport the way the
    # SDK mounts its own for ssh:// (its own would connect at once, trusting known_hosts).
    sdk = docker.DockerClient(base_url="http://127.0.0.1:9", version=API_VERSION, timeout=timeout)
    api = sdk.api
    api.trust_env = False
    api._custom_adapter = adapter
    api.mount("http+docker://ssh", adapter)
    api._unmount("http://", "https://")
    api.base_url = "http+docker://ssh"
    return sdk


# -- clients ----------------------------------------------------------------------------------------


def connect(url: str, trust: Trust, *, timeout: float = TIMEOUT) -> docker.DockerClient:
    """A docker SDK client for one engine; nothing is sent until it is used."""
    endpoint = parse_endpoint(url)
    if endpoint.scheme == "ssh":
        return _connect_ssh(endpoint, trust, timeout)
    tls = bool(trust.ca or trust.client_cert or trust.fingerprint)
    if not tls and not trust.insecure:
        raise EngineError(
            "This endpoint has no TLS: give the CA and client certificate, or (Admins) allow insecure."
        )
    if tls and not trust.fingerprint:
        raise EngineError("The engine's certificate fingerprint has not been confirmed.")
    scheme = "https" if tls else "http"
    base_url = f"{scheme}://{_netloc(endpoint)}"
    sdk = docker.DockerClient(base_url=base_url, version=API_VERSION, timeout=timeout, tls=tls)
    sdk.api.trust_env = False  # REQUESTS_CA_BUNDLE must not replace the pinned trust
    if tls:
        sdk.api.mount("https://", PinnedTLSAdapter(ssl_context(trust), trust.fingerprint))
    return sdk


def _netloc(endpoint: Endpoint) -> str:
    host = endpoint.host if ":" not in endpoint.host else f"[{endpoint.host}]"
    return f"{host}:{endpoint.port}"


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
        return f"TLS with {where} failed: the engine refused the connection ({_short(text)})."
    if isinstance(exc, requests.exceptions.ReadTimeout | requests.exceptions.ConnectTimeout | TimeoutError):
        return f"{where} did not answer within {TIMEOUT} s."
    if isinstance(exc, requests.exceptions.ConnectionError):
        if "timed out" in text.lower():
            return f"{where} did not answer within {TIMEOUT} s."
        if "Connection refused" in text:
            return f"{where} refused the connection (nothing listens on that port?)."
        if "Name or service not known" in text or "nodename nor servname" in text:
            return f"The host name of {where} does not resolve."
        return f"Cannot reach {where}: {_short(text)}."
    return _short(text) or type(exc).__name__


def _short(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""


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


# -- containers --------------------------------------------------------------------------------------


@dataclass
class ContainerSummary:
    """One row of a host page's container table, from the engine's list (one call for all)."""

    id: str
    name: str
    image: str
    state: str  # created, running, paused, restarting, removing, exited, dead (or "removed")
    status: str  # the engine's words: "Up 5 minutes", "Exited (3) 2 hours ago"
    ports: list[str]
    created: int
    labels: dict[str, str]

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def running(self) -> bool:
        return self.state == "running"


def _ports(ports: list[dict[str, Any]] | None) -> list[str]:
    shown = []
    for port in ports or []:
        inside = f"{port.get('PrivatePort')}/{port.get('Type', 'tcp')}"
        shown.append(
            f"{port.get('IP', '')}:{port['PublicPort']}->{inside}" if port.get("PublicPort") else inside
        )
    return sorted(set(shown))


def summary_from_list(item: dict[str, Any]) -> ContainerSummary:
    names = item.get("Names") or [""]
    return ContainerSummary(
        id=item["Id"],
        name=names[0].lstrip("/"),
        image=item.get("Image", ""),
        state=item.get("State", ""),
        status=item.get("Status", ""),
        ports=_ports(item.get("Ports")),
        created=int(item.get("Created") or 0),
        labels=item.get("Labels") or {},
    )


def list_containers(sdk: docker.DockerClient, **filters: Any) -> list[ContainerSummary]:
    items = sdk.api.containers(all=True, filters=filters or None)
    return sorted((summary_from_list(i) for i in items), key=lambda c: (not c.running, c.name))


def container_summary(sdk: docker.DockerClient, container_id: str) -> ContainerSummary | None:
    found = list_containers(sdk, id=container_id)
    return found[0] if found else None


CONTAINER_ACTIONS = ("start", "stop", "restart", "remove")


def act(sdk: docker.DockerClient, container_id: str, action: str) -> None:
    if action not in CONTAINER_ACTIONS:
        raise EngineError(f"unknown container action {action!r}")
    api = sdk.api
    if action == "start":
        api.start(container_id)
    elif action == "stop":
        api.stop(container_id, timeout=10)
    elif action == "restart":
        api.restart(container_id, timeout=10)
    else:
        api.remove_container(container_id, force=True)


def inspect(sdk: docker.DockerClient, container_id: str, *, show_secrets: bool) -> dict[str, Any]:
    """The engine's inspect, with environment values hidden from who may not see secrets."""
    attrs = sdk.api.inspect_container(container_id)
    if not show_secrets:
        config = attrs.get("Config") or {}
        config["Env"] = [f"{line.partition('=')[0]}=********" for line in config.get("Env") or []]
    return attrs


def recent_events(sdk: docker.DockerClient, seconds: int = 3600, limit: int = 30) -> list[dict[str, Any]]:
    """The engine's own event history (it keeps about the last thousand), newest first."""
    import time

    now = int(time.time())
    stream = sdk.api.events(since=now - seconds, until=now, decode=True)
    try:
        items = [event for event in stream if event.get("Type") in {"container", "image"}]
    finally:
        with contextlib.suppress(Exception):
            stream.close()
    return list(reversed(items[-limit:]))


def list_images(sdk: docker.DockerClient) -> list[dict[str, Any]]:
    images = []
    for item in sdk.api.images():
        tags = [t for t in item.get("RepoTags") or [] if t != "<none>:<none>"]
        images.append(
            {
                "id": item["Id"].split(":", 1)[-1][:12],
                "tags": tags,
                "size": item.get("Size"),
                "created": item["Created"],
            }
        )
    return sorted(images, key=lambda i: (i["tags"] or ["~"])[0])


def handshake_error(url: str, trust: Trust) -> str:
    """ "" when the engine at ``url`` answers with ``trust``, else why not (a refused
    certificate, a closed port): rotation's verification and the lab tests ask this."""
    try:
        with contextlib.closing(connect(url, trust, timeout=5)) as sdk:
            sdk.version()
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return describe_error(exc, url) or type(exc).__name__
    return ""
