"""A tiny certificate authority for the lab: a CA, server and client certificates as PEM files.

Generic on purpose: the Docker engines use it for ``--tlsverify``, and other lab
peers (registries, Harbor's token signer) and the portal's own tests reuse it.
Keys are EC P-256 by default (fast to make); pass ``algorithm="rsa"`` where a
peer insists on RSA (JWT RS256 signing, for instance).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Algorithm = Literal["ec", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

#: Certificates start an hour in the past so a peer whose clock lags a little still accepts them.
_BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class CertFiles:
    """PEM files of one issued certificate, with the CA that signed it."""

    cert: Path
    key: Path
    ca: Path

    def as_dict(self) -> dict[str, str]:
        return {"ca": str(self.ca), "cert": str(self.cert), "key": str(self.key)}


def new_key(algorithm: Algorithm = "ec") -> PrivateKey:
    if algorithm == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def write_key(path: Path, key: PrivateKey) -> Path:
    """Write ``key`` as unencrypted PKCS#8 PEM, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Created 0600 from the start: a key must never be world-readable, not even briefly.
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Photon Portal lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(ips: tuple[str, ...], dns: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    return x509.SubjectAlternativeName(names)


class CertificateAuthority:
    """A CA whose certificate and key live in ``directory`` as ``ca.pem`` and ``ca-key.pem``."""

    def __init__(self, directory: Path, cert: x509.Certificate, key: PrivateKey) -> None:
        self.directory = directory
        self.cert = cert
        self.key = key

    @property
    def cert_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def key_path(self) -> Path:
        return self.directory / "ca-key.pem"

    @classmethod
    def create(
        cls,
        directory: Path,
        common_name: str = "Photon Portal lab CA",
        *,
        days: int = 365,
        algorithm: Algorithm = "ec",
    ) -> CertificateAuthority:
        key = new_key(algorithm)
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        ca = cls(directory, cert, key)
        write_key(ca.key_path, key)
        write_cert(ca.cert_path, cert)
        return ca

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca-key.pem").read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError(f"unsupported CA key type in {directory}: {type(key).__name__}")
        return cls(directory, cert, key)

    @classmethod
    def load_or_create(
        cls, directory: Path, common_name: str = "Photon Portal lab CA"
    ) -> CertificateAuthority:
        if (directory / "ca.pem").exists() and (directory / "ca-key.pem").exists():
            return cls.load(directory)
        return cls.create(directory, common_name)

    def issue_server(
        self,
        directory: Path,
        name: str,
        *,
        ips: tuple[str, ...] = ("127.0.0.1",),
        dns: tuple[str, ...] = ("localhost",),
        days: int = 90,
        algorithm: Algorithm = "ec",
    ) -> CertFiles:
        """Issue ``NAME.pem``/``NAME-key.pem`` for a TLS server reachable at ``ips`` and ``dns``."""
        if not ips and not dns:
            raise ValueError("a server certificate needs at least one IP address or DNS name")
        common_name = dns[0] if dns else ips[0]
        return self._issue(
            directory,
            name,
            common_name,
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            san=_san(ips, dns),
            days=days,
            algorithm=algorithm,
        )

    def issue_client(
        self,
        directory: Path,
        name: str,
        common_name: str = "portal",
        *,
        days: int = 90,
        algorithm: Algorithm = "ec",
    ) -> CertFiles:
        """Issue ``NAME.pem``/``NAME-key.pem`` for a TLS client identified as ``common_name``."""
        return self._issue(
            directory,
            name,
            common_name,
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
            san=None,
            days=days,
            algorithm=algorithm,
        )

    def _issue(
        self,
        directory: Path,
        name: str,
        common_name: str,
        *,
        usage: x509.ObjectIdentifier,
        san: x509.SubjectAlternativeName | None,
        days: int,
        algorithm: Algorithm,
    ) -> CertFiles:
        key = new_key(algorithm)
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    # RSA key exchange encrypts with the key; ECDHE with an EC key never does.
                    key_encipherment=algorithm == "rsa",
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return CertFiles(
            cert=write_cert(directory / f"{name}.pem", cert),
            key=write_key(directory / f"{name}-key.pem", key),
            ca=self.cert_path,
        )
