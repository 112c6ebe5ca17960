"""SSH key pairs the portal makes for one host alone (at provisioning, and when a
credential rotation replaces one): no other host trusts them."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


@dataclass(frozen=True)
class SshKey:
    private: str = field(repr=False)
    public: str


def new_ssh_key(host_name: str) -> SshKey:
    """An Ed25519 key pair for the host named ``host_name`` alone: no other host trusts it."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return SshKey(private=private, public=f"{public.decode()} photon-portal@{host_name}")


def public_ssh_key(private: str) -> str:
    """The OpenSSH public line of a stored private key."""
    key = serialization.load_ssh_private_key(private.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
