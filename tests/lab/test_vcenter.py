"""The lab's vCenter answers like one: inventory, Photon guests, logins, its certificate."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import math
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyVim.connect import Connect, Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from tests.lab import common, vcenter
from tests.lab.fixtures import start

PHOTON = "vmwarePhoton64Guest"
DOCUMENTATION_NETS = [
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15")
]
VM_PROPERTIES = [
    "name",
    "config.guestId",
    "config.guestFullName",
    "config.instanceUuid",
    "guest.ipAddress",
    "guest.hostName",
    "runtime.host",
    "runtime.powerState",
]


def _up_or_skip(workdir: Path, **options: Any) -> dict[str, Any]:
    return start(lambda: vcenter.up(workdir, **options))


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    return host, int(port)


def pinned_context(pem: str) -> ssl.SSLContext:
    """Trust exactly the certificate a person confirmed, not its issuer, and nothing else.

    pyvmomi's own ``thumbprint=`` is no pin to rely on (see the tests below), so
    the pin is the TLS context: the confirmed leaf is the only trust anchor.
    Names are not checked: vCenters are often reached by address.
    """
    context = ssl.create_default_context(cadata=pem)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.check_hostname = False
    return context


def _connect(info: dict[str, Any], **overrides: Any) -> vim.ServiceInstance:
    host, port = _host_port(info["url"])
    pem = Path(info["certificate"]).read_text()
    assert vcenter.thumbprint(ssl.PEM_cert_to_DER_cert(pem)) == info["thumbprint"]
    kwargs = {"user": info["user"], "pwd": info["password"], "sslContext": pinned_context(pem), **overrides}
    return SmartConnect(host=host, port=port, **kwargs)


def _connect_by_thumbprint(
    info: dict[str, Any], thumbprint: str, context: ssl.SSLContext
) -> vim.ServiceInstance:
    """pyvmomi's thumbprint pin: only ``Connect`` (SmartConnect's version probe ignores it)."""
    host, port = _host_port(info["url"])
    return Connect(
        host=host,
        port=port,
        user=info["user"],
        pwd=info["password"],
        thumbprint=thumbprint,
        sslContext=context,
        version="vim.version.version10",
    )


@pytest.fixture(scope="session")
def service(lab_vcenter: dict[str, Any]) -> Iterator[vim.ServiceInstance]:
    si = _connect(lab_vcenter)
    yield si
    Disconnect(si)


def _retrieve_vms(si: vim.ServiceInstance) -> vmodl.query.PropertyCollector.RetrieveResult:
    """Every VM's properties in one RetrievePropertiesEx over a container view."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return content.propertyCollector.RetrievePropertiesEx(
            [_vm_filter(view)], vmodl.query.PropertyCollector.RetrieveOptions()
        )
    finally:
        view.Destroy()


def _vm_filter(view: vim.view.ContainerView) -> vmodl.query.PropertyCollector.FilterSpec:
    return vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[
            vmodl.query.PropertyCollector.ObjectSpec(
                obj=view,
                skip=True,
                selectSet=[
                    vmodl.query.PropertyCollector.TraversalSpec(
                        name="view", path="view", skip=False, type=vim.view.ContainerView
                    )
                ],
            )
        ],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=VM_PROPERTIES)],
    )


@pytest.mark.parametrize("page_size", [1, 7, 30, 99, 100, 1000])
def test_the_property_collector_pages_like_vcenter(
    service: vim.ServiceInstance, vm_rows: list[dict], page_size: int
) -> None:
    """maxObjects bounds every page; ContinueRetrievePropertiesEx hands out the rest,
    each object once, and the last page carries no token."""
    content = service.RetrieveContent()
    pc = content.propertyCollector
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        page = pc.RetrievePropertiesEx(
            [_vm_filter(view)], vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=page_size)
        )
        pages = [page]
        while page.token:
            page = pc.ContinueRetrievePropertiesEx(page.token)
            pages.append(page)
    finally:
        view.Destroy()
    assert len(pages) == math.ceil(len(vm_rows) / page_size)
    assert all(len(p.objects) == page_size for p in pages[:-1]) and 0 < len(pages[-1].objects) <= page_size
    rows = [row for p in pages for row in _as_rows(p)]
    assert sorted(rows, key=lambda r: r["moref"]) == sorted(vm_rows, key=lambda r: r["moref"])
    # A finished retrieval's token is spent.
    if len(pages) > 1:
        with pytest.raises(vmodl.fault.InvalidArgument):
            pc.ContinueRetrievePropertiesEx(pages[0].token)


def test_a_cancelled_retrieval_hands_out_nothing_more(service: vim.ServiceInstance) -> None:
    content = service.RetrieveContent()
    pc = content.propertyCollector
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        page = pc.RetrievePropertiesEx(
            [_vm_filter(view)], vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=10)
        )
        assert len(page.objects) == 10 and page.token
        pc.CancelRetrievePropertiesEx(page.token)
        with pytest.raises(vmodl.fault.InvalidArgument):
            pc.ContinueRetrievePropertiesEx(page.token)
        with pytest.raises(vmodl.fault.InvalidArgument):
            pc.ContinueRetrievePropertiesEx("no-such-token")
    finally:
        view.Destroy()


def test_abandoned_retrievals_are_forgotten_oldest_first(lab_vcenter: dict[str, Any]) -> None:
    """A client that never cancels cannot grow the lab's vCenter without bound."""
    si = _connect(lab_vcenter)
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        options = vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=10)
        tokens = [
            content.propertyCollector.RetrievePropertiesEx([_vm_filter(view)], options).token
            for _ in range(70)
        ]
        with pytest.raises(vmodl.fault.InvalidArgument):
            content.propertyCollector.ContinueRetrievePropertiesEx(tokens[0])
        assert len(content.propertyCollector.ContinueRetrievePropertiesEx(tokens[-1]).objects) == 10
    finally:
        view.Destroy()
        Disconnect(si)


def test_another_session_cannot_continue_a_retrieval(
    lab_vcenter: dict[str, Any], service: vim.ServiceInstance
) -> None:
    """Tokens belong to the session's own collector, as on vCenter."""
    content = service.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    other = _connect(lab_vcenter)
    try:
        page = content.propertyCollector.RetrievePropertiesEx(
            [_vm_filter(view)], vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=10)
        )
        with pytest.raises(vmodl.fault.InvalidArgument):
            other.RetrieveContent().propertyCollector.ContinueRetrievePropertiesEx(page.token)
        content.propertyCollector.CancelRetrievePropertiesEx(page.token)
    finally:
        Disconnect(other)
        view.Destroy()


def _as_rows(result: vmodl.query.PropertyCollector.RetrieveResult) -> list[dict[str, Any]]:
    return [
        {"moref": obj.obj._moId, **{prop.name: prop.val for prop in obj.propSet}} for obj in result.objects
    ]


@pytest.fixture(scope="session")
def vm_rows(service: vim.ServiceInstance) -> list[dict[str, Any]]:
    result = _retrieve_vms(service)
    # No continuation token: the whole inventory came back from the one call.
    assert result.token is None
    return _as_rows(result)


def test_inventory_holds_at_least_the_requested_vms(lab_vcenter: dict[str, Any], vm_rows: list[dict]) -> None:
    assert len(vm_rows) >= 100
    assert len(vm_rows) == lab_vcenter["vms"]
    assert len({row["name"] for row in vm_rows}) == len(vm_rows)


def test_photon_guests_report_address_and_host_name(lab_vcenter: dict[str, Any], vm_rows: list[dict]) -> None:
    photon = [row for row in vm_rows if row.get("config.guestId") == PHOTON]
    assert len(photon) == lab_vcenter["photon_vms"] == 30
    assert {row["config.guestFullName"] for row in photon} == {"VMware Photon OS (64-bit)"}
    running = [row for row in photon if row.get("guest.ipAddress")]
    assert len(running) == len(photon) - len(lab_vcenter["powered_off_photon"])
    assert all(row.get("guest.hostName") for row in running)
    assert all(row["runtime.powerState"] == "poweredOn" for row in running)
    addresses = [ipaddress.ip_address(row["guest.ipAddress"]) for row in running]
    assert len(set(addresses)) == len(addresses)
    assert all(any(a in net for net in DOCUMENTATION_NETS) for a in addresses)


def test_other_guests_are_not_photon_and_have_no_address(vm_rows: list[dict]) -> None:
    others = [row for row in vm_rows if row.get("config.guestId") != PHOTON]
    assert len({row["config.guestId"] for row in others}) > 1
    assert not any(row.get("guest.ipAddress") for row in others)


def test_names_a_page_must_escape_exist(lab_vcenter: dict[str, Any], vm_rows: list[dict]) -> None:
    names = {row["name"] for row in vm_rows}
    wanted = {'<script>alert("vm")</script>', 'O\'Brien & "Sons"', "photon-ü-01"}
    assert wanted <= names
    assert set(lab_vcenter["awkward_names"]) == wanted


def test_wrong_password_is_refused(lab_vcenter: dict[str, Any]) -> None:
    with pytest.raises(vim.fault.InvalidLogin):
        _connect(lab_vcenter, pwd=lab_vcenter["password"] + "x")


def test_thumbprint_is_the_served_certificate(lab_vcenter: dict[str, Any]) -> None:
    pem = ssl.get_server_certificate(_host_port(lab_vcenter["url"]), timeout=5)
    assert vcenter.thumbprint(ssl.PEM_cert_to_DER_cert(pem)) == lab_vcenter["thumbprint"]
    assert Path(lab_vcenter["certificate"]).read_text().strip() == pem.strip()


def test_thumbprint_pin_in_pyvmomi(lab_vcenter: dict[str, Any]) -> None:
    # A verifying context is needed: pyvmomi only compares thumbprints after verification failed.
    Disconnect(_connect_by_thumbprint(lab_vcenter, lab_vcenter["thumbprint"], ssl.create_default_context()))
    with pytest.raises(vim.fault.HostConnectFault, match="thumbprint mismatch"):
        _connect_by_thumbprint(lab_vcenter, ":".join(["00"] * 32), ssl.create_default_context())


def test_pyvmomi_thumbprint_is_no_pin_on_its_own(lab_vcenter: dict[str, Any]) -> None:
    """Traps for the portal: each of these accepts a wrong thumbprint."""
    wrong = ":".join(["00"] * 32)
    host, port = _host_port(lab_vcenter["url"])
    # SmartConnect to 127.0.0.1/localhost without a context verifies nothing.
    Disconnect(
        SmartConnect(
            host=host, port=port, user=lab_vcenter["user"], pwd=lab_vcenter["password"], thumbprint=wrong
        )
    )
    # After one pinned connection the context is left switched to CERT_NONE.
    context = ssl.create_default_context()
    Disconnect(_connect_by_thumbprint(lab_vcenter, lab_vcenter["thumbprint"], context))
    Disconnect(_connect_by_thumbprint(lab_vcenter, wrong, context))


def test_pinned_context_refuses_another_certificate(lab_vcenter: dict[str, Any]) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _connect(lab_vcenter, sslContext=pinned_context(_self_signed_pem()))


def _self_signed_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _old_session_refused(si: vim.ServiceInstance) -> bool:
    """The session from before a restart is gone (the first call may only find the dead socket)."""
    for _ in range(2):
        try:
            _retrieve_vms(si)
        except (OSError, http.client.HTTPException):
            continue
        except vim.fault.NotAuthenticated:
            return True
    return False


def test_lifecycle_guests_restart_down_and_up_again(tmp_path: Path) -> None:
    """A second, small vCenter: handed-in guests, restart keeps the model, down leaves nothing."""
    guest = {"ip": "10.99.0.7", "hostname": "photon-a.lab.example"}
    try:
        info = _up_or_skip(tmp_path, vms=10, photon_share=0.5, guests=[guest])
        si = _connect(info)
        before = _as_rows(_retrieve_vms(si))
        handed_in = [row for row in before if row.get("guest.ipAddress") == guest["ip"]]
        assert [row["guest.hostName"] for row in handed_in] == [guest["hostname"]]

        assert vcenter.restart(tmp_path) == info
        assert _old_session_refused(si)
        si = _connect(info)
        assert sorted(map(repr, _as_rows(_retrieve_vms(si)))) == sorted(map(repr, before))
        Disconnect(si)

        pid = int((tmp_path / "pids" / "vcsim").read_text())
        vcenter.down(tmp_path)
        assert not common.running(pid)
        assert not common.port_open(*_host_port(info["url"]))
        assert not (tmp_path / "vcsim").exists()
        assert not vcenter.datastore_dir(tmp_path).exists()
        vcenter.down(tmp_path)  # idempotent

        info = _up_or_skip(tmp_path, vms=10)
        Disconnect(_connect(info))
    finally:
        vcenter.down(tmp_path)
