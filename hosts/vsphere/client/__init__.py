"""Connections to vCenter with pyvmomi, trusting exactly the certificate a person confirmed.

pyvmomi's own ``thumbprint=`` is not a pin (tests/lab/test_vcenter.py shows three
ways it accepts a wrong one), so the pin is the TLS context: the confirmed leaf
certificate is its only trust anchor, and any other certificate fails the
handshake. Before that, every connection fetches the certificate vCenter serves
and compares its SHA-256 thumbprint with the pinned one, so a replaced
certificate is refused with a message a person can act on rather than an
OpenSSL error.

Everything here is blocking (pyvmomi is); async callers use ``asyncio.to_thread``.
Every network step has a timeout, so a vCenter that does not answer is reported
within a bounded time.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import re
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography import x509
from pyVim.connect import Connect, Disconnect
from pyVmomi import vim, vmodl

if TYPE_CHECKING:
    from hosts.models import VCenter

#: The API version the portal speaks: vSphere 6.5, which every later vCenter still
#: serves. Fixed rather than probed: pyvmomi's version probe has no timeout.
API_VERSION = "vim.version.version11"
#: Seconds for a TCP connect, a TLS handshake or a reply; WaitForUpdatesEx waits
#: less than this on the server (see hosts.vsphere.watch).
TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0


class VSphereError(Exception):
    """Something a person can read: why the portal could not use this vCenter."""


class Unreachable(VSphereError):
    pass


class LoginRefused(VSphereError):
    pass


class CertificateMismatch(VSphereError):
    pass


@dataclass(frozen=True)
class Certificate:
    pem: str
    thumbprint: str
    subject: str
    issuer: str
    not_after: str


def endpoint(url: str) -> tuple[str, int]:
    """(host, port) of ``https://host[:port][/sdk]``, or of a bare ``host[:port]``."""
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname:
        raise VSphereError(f"not a vCenter address: {url!r} (expected https://host[:port])")
    try:
        port = parts.port or 443
    except ValueError:
        raise VSphereError(f"not a valid port in {url!r}") from None
    return parts.hostname, port


def thumbprint(der: bytes) -> str:
    """SHA-256 fingerprint as vSphere shows it: ``AB:CD:...``."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def normalize_thumbprint(text: str) -> str:
    """Accept what people paste (any case, colons, spaces or none); raise if not SHA-256."""
    digits = re.sub(r"[\s:]", "", text).upper()
    if not re.fullmatch(r"[0-9A-F]{64}", digits):
        raise VSphereError("a SHA-256 thumbprint is 64 hexadecimal digits (AB:CD:... as vSphere shows it)")
    return ":".join(digits[i : i + 2] for i in range(0, 64, 2))


def fetch_certificate(host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> Certificate:
    """The certificate ``host:port`` serves, trusted by nobody yet: for a person to confirm."""
    context = ssl.create_default_context()
    # Deliberately unverified: this only reads what is served, to show and compare it.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except TimeoutError:
        raise Unreachable(f"{host}:{port} did not answer within {timeout:.0f} s") from None
    except ssl.SSLError as exc:
        raise Unreachable(f"{host}:{port} does not speak TLS: {exc.reason or exc}") from None
    except OSError as exc:
        raise Unreachable(f"cannot reach {host}:{port}: {exc.strerror or exc}") from None
    if not der:
        raise Unreachable(f"{host}:{port} served no certificate")
    return _describe(der)


def _describe(der: bytes) -> Certificate:
    cert = x509.load_der_x509_certificate(der)
    return Certificate(
        pem=ssl.DER_cert_to_PEM_cert(der),
        thumbprint=thumbprint(der),
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_after=cert.not_valid_after_utc.strftime("%Y-%m-%d"),
    )


def pinned_context(pem: str) -> ssl.SSLContext:
    """Trust exactly the confirmed certificate, not its issuer, and nothing else.

    Names are not checked: vCenters are often reached by address, and the pin is
    stronger than a name check.
    """
    context = ssl.create_default_context(cadata=pem)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.check_hostname = False
    return context


def connect_pinned(
    url: str, username: str, password: str, pem: str, *, timeout: float = TIMEOUT
) -> vim.ServiceInstance:
    """Log in to ``url`` if, and only if, it serves the certificate ``pem``."""
    host, port = endpoint(url)
    expected = thumbprint(ssl.PEM_cert_to_DER_cert(pem))
    served = fetch_certificate(host, port)
    if served.thumbprint != expected:
        raise CertificateMismatch(
            f"{host}:{port} now presents a certificate with SHA-256 thumbprint {served.thumbprint}, "
            f"not the confirmed {expected}. Refused: if vCenter's certificate was replaced on "
            "purpose, an Admin must confirm the new one."
        )
    try:
        return Connect(
            host=host,
            port=port,
            user=username,
            pwd=password,
            version=API_VERSION,
            sslContext=pinned_context(pem),
            httpConnectionTimeout=timeout,
            connectionPoolTimeout=-1,
        )
    except vim.fault.InvalidLogin:
        raise LoginRefused(f"{host}:{port} refused the user name or password") from None
    except ssl.SSLCertVerificationError:
        # Swapped between the check above and this handshake: still refused.
        raise CertificateMismatch(
            f"{host}:{port} presented a certificate other than the confirmed {expected}: refused"
        ) from None
    except TimeoutError:
        raise Unreachable(f"{host}:{port} did not answer within {timeout:.0f} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise Unreachable(f"lost {host}:{port} while logging in: {exc}") from None
    except vmodl.MethodFault as exc:
        raise VSphereError(f"{host}:{port} refused the login: {fault_message(exc)}") from None


def connect(vcenter: VCenter, *, timeout: float = TIMEOUT) -> vim.ServiceInstance:
    if not vcenter.certificate or not vcenter.thumbprint:
        raise CertificateMismatch(f"{vcenter}: no certificate has been confirmed yet")
    pem_thumbprint = thumbprint(ssl.PEM_cert_to_DER_cert(vcenter.certificate))
    if pem_thumbprint != vcenter.thumbprint:
        raise CertificateMismatch(f"{vcenter}: the stored certificate does not match the pinned thumbprint")
    return connect_pinned(
        vcenter.url, vcenter.username, vcenter.password or "", vcenter.certificate, timeout=timeout
    )


def disconnect(si: vim.ServiceInstance) -> None:
    """Log out, ignoring a session or socket that is already gone."""
    # Logging out of a dead session cannot fail usefully.
    with contextlib.suppress(Exception):
        Disconnect(si)


@contextmanager
def session(vcenter: VCenter, *, timeout: float = TIMEOUT) -> Iterator[vim.ServiceInstance]:
    si = connect(vcenter, timeout=timeout)
    try:
        yield si
    finally:
        disconnect(si)


def fault_message(exc: vmodl.MethodFault) -> str:
    """A vSphere fault's own message, or its type's name where it has none.

    Every MethodFault carries ``msg`` at run time (VmomiSupport declares it),
    but pyVmomi's stubs leave it out, hence getattr."""
    return getattr(exc, "msg", None) or type(exc).__name__


def describe_failure(exc: BaseException) -> str:
    """One line for a person, for anything a vCenter call may raise."""
    if isinstance(exc, VSphereError):
        return str(exc)
    if isinstance(exc, vim.fault.NotAuthenticated):
        return "the vCenter session ended (vCenter restarted or logged the portal out)"
    if isinstance(exc, vmodl.MethodFault):
        return fault_message(exc)
    if isinstance(exc, TimeoutError):
        return "vCenter did not answer in time"
    if isinstance(exc, (OSError, http.client.HTTPException)):
        return f"lost the connection to vCenter: {exc}"
    return f"{type(exc).__name__}: {exc}"


def about(si: vim.ServiceInstance) -> dict[str, Any]:
    """What the add form shows before saving: version, datacenters, number of VMs."""
    content = si.RetrieveContent()
    counts = {}
    views = content.viewManager
    assert views is not None  # every vCenter's ServiceContent has its ViewManager
    for key, kind in (("datacenters", vim.Datacenter), ("vms", vim.VirtualMachine)):
        view = views.CreateContainerView(content.rootFolder, [kind], True)
        try:
            counts[key] = len(view.view)
        finally:
            view.Destroy()
    return {"version": content.about.fullName, **counts}


#: pyVmomi's types and faults under names the code outside this package uses, so that
#: only this package imports pyVmomi.
ServiceInstance = vim.ServiceInstance
MethodFault = vmodl.MethodFault
NotFound = vmodl.fault.ManagedObjectNotFound
