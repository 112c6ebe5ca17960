"""The SSH transport to an engine (``ssh://user@host``): the host key a person confirms,
the login key, and the docker SDK's SSH adapter trusting only the pinned host key."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import socket
from dataclasses import dataclass

import docker
import paramiko
from docker.transport.sshconn import SSHHTTPAdapter

from hosts.fleet.endpoint import API_VERSION, TIMEOUT, Endpoint, EngineError, netloc, short, unreachable
from hosts.fleet.trust import Trust


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
        raise EngineError(unreachable(endpoint, exc)) from None
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        return HostKey.of(transport.get_remote_server_key())
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise EngineError(
            f"{endpoint.host}:{endpoint.port} did not complete an SSH handshake within {timeout:.0f} s"
            f" ({short(str(exc)) or type(exc).__name__})."
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
        super().__init__(f"ssh://{endpoint.user}@{netloc(endpoint)}", timeout=timeout, max_pool_size=4)

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


def connect_ssh(endpoint: Endpoint, trust: Trust, timeout: float) -> docker.DockerClient:
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
        raise EngineError(f"SSH with {where} failed: {short(str(exc)) or type(exc).__name__}.") from None
    except OSError as exc:
        raise EngineError(unreachable(endpoint, exc)) from None
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
