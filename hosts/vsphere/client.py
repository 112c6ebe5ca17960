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
import io
import re
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

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
    from cryptography import x509

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
        raise VSphereError(f"{host}:{port} refused the login: {exc.msg or type(exc).__name__}") from None


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


def describe_failure(exc: BaseException) -> str:
    """One line for a person, for anything a vCenter call may raise."""
    if isinstance(exc, VSphereError):
        return str(exc)
    if isinstance(exc, vim.fault.NotAuthenticated):
        return "the vCenter session ended (vCenter restarted or logged the portal out)"
    if isinstance(exc, vmodl.MethodFault):
        return exc.msg or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return "vCenter did not answer in time"
    if isinstance(exc, (OSError, http.client.HTTPException)):
        return f"lost the connection to vCenter: {exc}"
    return f"{type(exc).__name__}: {exc}"


def about(si: vim.ServiceInstance) -> dict[str, Any]:
    """What the add form shows before saving: version, datacenters, number of VMs."""
    content = si.RetrieveContent()
    counts = {}
    for key, kind in (("datacenters", vim.Datacenter), ("vms", vim.VirtualMachine)):
        view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
        try:
            counts[key] = len(view.view)
        finally:
            view.Destroy()
    return {"version": content.about.fullName, **counts}


# --- The property collector, read fast ---------------------------------------------
#
# pyvmomi turns every SOAP element into a typed object through Python callbacks:
# for 2,000 VMs that is three quarters of a sync. The property collector's answers
# (RetrievePropertiesEx, ContinueRetrievePropertiesEx, WaitForUpdatesEx) are read
# here instead with ElementTree's C parser into plain values: ``Ref`` for managed
# objects, ``dict`` for data objects, lists, and scalars typed by ``xsi:type``.
# Requests and faults still go through pyvmomi, so sessions, cookies and error
# types are pyvmomi's own.

_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_NS = "{urn:vim25}"
_INTEGERS = {"xsd:int", "xsd:long", "xsd:short", "xsd:byte"}


class Ref(tuple[str, str]):
    """A managed object reference: (type, id)."""

    __slots__ = ()

    def __new__(cls, kind: str, moref: str) -> Ref:
        return super().__new__(cls, (kind, moref))

    @property
    def type(self) -> str:
        return self[0]

    @property
    def moref(self) -> str:
        return self[1]


def as_list(value: Any) -> list[Any]:
    """Nested arrays arrive as a single item when they hold one: read them as lists."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _tag(element: ET.Element) -> str:
    tag = element.tag
    return tag[len(_NS) :] if tag.startswith(_NS) else tag


def plain(element: ET.Element) -> Any:
    """A SOAP value as plain Python."""
    kind = element.get(_XSI_TYPE, "")
    if kind == "ManagedObjectReference" or (not kind and element.get("type") and not len(element)):
        return Ref(element.get("type", ""), element.text or "")
    if kind.startswith("ArrayOf"):
        return [plain(child) for child in element]
    if not len(element):
        text = element.text or ""
        if kind in _INTEGERS:
            return int(text)
        if kind == "xsd:boolean":
            return text == "true"
        return text
    fields: dict[str, Any] = {"_type": kind} if kind else {}
    for child in element:
        name = _tag(child)
        value = plain(child)
        if name in fields and name != "_type":
            previous = fields[name]
            fields[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            fields[name] = value
    return fields


def invoke_raw(si: vim.ServiceInstance, mo: Any, method: str, *args: Any) -> ET.Element:
    """Call ``method`` on ``mo`` through the session's stub; the reply's body element.

    A SOAP fault is raised as pyvmomi raises it (vim.fault.NotAuthenticated, ...).
    """
    stub = si._stub
    info = mo._GetMethodInfo(method)
    request = stub.SerializeRequest(mo, info, list(args))
    headers = {
        "Cookie": stub.cookie,
        "SOAPAction": stub.versionId,
        "Content-Type": "text/xml; charset=UTF-8",
    }
    conn = stub.GetConnection()
    try:
        conn.request("POST", stub.path, request, headers)
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        stub.DropConnections()
        raise
    if response.status == 500:
        stub.ReturnConnection(conn)
        from pyVmomi.SoapAdapter import SoapResponseDeserializer

        fault = SoapResponseDeserializer(stub).Deserialize(io.BytesIO(body), info.result)
        raise fault
    if response.status != 200:
        conn.close()
        raise http.client.HTTPException(f"{response.status} {response.reason}")
    stub.ReturnConnection(conn)
    envelope = ET.fromstring(body)  # noqa: S314 - the pinned vCenter's reply; expat expands no external entities
    soap_body = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    if soap_body is None or not len(soap_body):
        raise http.client.HTTPException("vCenter sent a reply without a SOAP body")
    return soap_body[0]


@dataclass
class Page:
    objects: list[tuple[Ref, dict[str, Any]]]
    token: str | None


def retrieve_page(
    si: vim.ServiceInstance, pc: vmodl.query.PropertyCollector, method: str, *args: Any
) -> Page | None:
    """RetrievePropertiesEx / ContinueRetrievePropertiesEx, read fast."""
    reply = invoke_raw(si, pc, method, *args)
    returnval = reply.find(_NS + "returnval")
    if returnval is None:
        return None
    objects = []
    token = None
    for child in returnval:
        name = _tag(child)
        if name == "token":
            token = child.text
        elif name == "objects":
            ref: Ref | None = None
            props: dict[str, Any] = {}
            for part in child:
                part_name = _tag(part)
                if part_name == "obj":
                    ref = Ref(part.get("type", ""), part.text or "")
                elif part_name == "propSet":
                    prop_name = part.findtext(_NS + "name") or ""
                    val = part.find(_NS + "val")
                    props[prop_name] = plain(val) if val is not None else None
            if ref is not None:
                objects.append((ref, props))
    return Page(objects, token)


@dataclass
class Change:
    ref: Ref
    kind: str  # enter, modify, leave
    changes: dict[str, Any]  # property path -> new value (None: unset)


def wait_for_updates(
    si: vim.ServiceInstance, pc: vmodl.query.PropertyCollector, version: str, max_wait_seconds: int
) -> tuple[str, list[Change]] | None:
    """One WaitForUpdatesEx on ``pc``; None when nothing changed within ``max_wait_seconds``."""
    options = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=max_wait_seconds)
    reply = invoke_raw(si, pc, "WaitForUpdatesEx", version, options)
    returnval = reply.find(_NS + "returnval")
    if returnval is None:
        return None
    new_version = returnval.findtext(_NS + "version") or version
    found: list[Change] = []
    for filter_set in returnval.iterfind(_NS + "filterSet"):
        for update in filter_set.iterfind(_NS + "objectSet"):
            obj = update.find(_NS + "obj")
            if obj is None:
                continue
            changes: dict[str, Any] = {}
            for change in update.iterfind(_NS + "changeSet"):
                val = change.find(_NS + "val")
                op = change.findtext(_NS + "op") or "assign"
                changes[change.findtext(_NS + "name") or ""] = (
                    plain(val) if val is not None and op != "remove" else None
                )
            found.append(
                Change(Ref(obj.get("type", ""), obj.text or ""), update.findtext(_NS + "kind") or "", changes)
            )
    return new_version, found


def recent_events(si: vim.ServiceInstance, moref: str, count: int = 20) -> list[dict[str, Any]]:
    """A VM's latest vSphere events (power, snapshots, reconfigurations), newest first."""
    spec = vim.event.EventFilterSpec(
        entity=vim.event.EventFilterSpec.ByEntity(
            entity=vim.VirtualMachine(moref, si._stub), recursion="self"
        ),
        maxCount=count,
    )
    found = [
        {"at": e.createdTime, "user": e.userName or "", "message": e.fullFormattedMessage or type(e).__name__}
        for e in si.RetrieveContent().eventManager.QueryEvents(spec) or []
        # Some servers (vcsim) ignore the entity filter: keep the VM's own.
        if getattr(getattr(e, "vm", None), "vm", None) is not None and e.vm.vm._moId == moref
    ]
    found.sort(key=lambda e: e["at"], reverse=True)
    return found[:count]
