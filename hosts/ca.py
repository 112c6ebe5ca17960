"""The portal's certificate authorities, for the Docker remote API over TLS.

The portal CA issues each host's server certificate (the host's addresses and
names as SANs, so the portal verifies the name it connects to). Clients are
another matter: dockerd's ``--tlsverify`` checks the chain, not the name, so a
client certificate from one CA that every host trusts would open every host.
Each host therefore gets a client CA of its own (:func:`new_client_ca`), which
signs that host's portal client certificate and nothing else, and is the only
CA its dockerd trusts (``--tlscacert``). CA and client keys are kept encrypted
in the database; a server key leaves the portal only to be written to its host,
and is not kept.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.db import IntegrityError, transaction

from hosts.models.changes import CertificateAuthority

NAME = "portal"
CA_DAYS = 3650
CERT_DAYS = 825
#: A host whose clock lags a little still accepts a certificate made just now.
_BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class Issued:
    cert: str
    key: str = field(repr=False)
    ca: str


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _pem_cert(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Photon Portal"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _new_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def authority() -> CertificateAuthority:
    """The portal CA, made on first use (concurrent first uses agree on one)."""
    existing = CertificateAuthority.objects.filter(name=NAME).first()
    if existing is not None:
        return existing
    cert, key = _new_ca("Photon Portal CA")
    try:
        with transaction.atomic():
            return CertificateAuthority.objects.create(name=NAME, cert=_pem_cert(cert), key=_pem_key(key))
    except IntegrityError:
        return CertificateAuthority.objects.get(name=NAME)


def _issue(
    ca: CertificateAuthority | ClientCa,
    common_name: str,
    usage: x509.ObjectIdentifier,
    san: x509.SubjectAlternativeName | None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert = x509.load_pem_x509_certificate(ca.cert.encode())
    # The portal's CA key is one _new_ca made: an EC key. load_pem_private_key's type is every
    # kind of private key, hence the two type: ignore[arg-type] below (the run-time type is not checked).
    ca_key = serialization.load_pem_private_key(str(ca.key).encode(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key  # type: ignore[arg-type]


def issue_server(names: list[str]) -> Issued:
    """A server certificate for a host known by ``names`` (addresses and DNS names)."""
    entries: list[x509.GeneralName] = []
    seen: set[str] = set()
    for name in names:
        name = name.strip().lower()
        if not name or name in seen:
            continue
        seen.add(name)
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    if not entries:
        raise ValueError("a server certificate needs at least one address or name")
    ca = authority()
    cert, key = _issue(ca, names[0], ExtendedKeyUsageOID.SERVER_AUTH, x509.SubjectAlternativeName(entries))
    return Issued(cert=_pem_cert(cert), key=_pem_key(key), ca=ca.cert)


@dataclass(frozen=True)
class ClientCa:
    """One host's client CA: its dockerd trusts this certificate alone for clients."""

    cert: str
    key: str = field(repr=False)


def new_client_ca(host_name: str) -> ClientCa:
    """A fresh client CA for the host named ``host_name`` (never shared with another host)."""
    cert, key = _new_ca(f"Photon Portal client CA for {host_name}")
    return ClientCa(cert=_pem_cert(cert), key=_pem_key(key))


def issue_client(ca: ClientCa, host_name: str) -> Issued:
    """The portal's client certificate for one host, signed by that host's client CA
    (``Issued.ca`` is that CA: what the host's dockerd gets as ``--tlscacert``)."""
    cert, key = _issue(ca, f"photon-portal@{host_name}", ExtendedKeyUsageOID.CLIENT_AUTH, None)
    return Issued(cert=_pem_cert(cert), key=_pem_key(key), ca=ca.cert)


def fingerprint(cert_pem: str) -> str:
    """SHA-256 of the certificate, as colon-separated hex (the form Host.tls_fingerprint keeps)."""
    digest = x509.load_pem_x509_certificate(cert_pem.encode()).fingerprint(hashes.SHA256())
    return ":".join(f"{b:02X}" for b in digest)
