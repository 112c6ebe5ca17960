"""Files on a datastore through vCenter's /folder service over the pinned TLS connection,
and an ISO uploaded there and connected to a VM's CD-ROM."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import quote, urlencode

from pyVim.task import WaitForTask
from pyVmomi import vim

from hosts.vsphere.client import TIMEOUT, VSphereError, endpoint, pinned_context


def _datacenter_of(entity: Any) -> Any:
    while entity is not None and not isinstance(entity, vim.Datacenter):
        entity = entity.parent
    return entity


def _datastore_url(vcenter: Any, datastore: Any, path: str) -> tuple[str, str, str]:
    """(host, port, request path) of a file on ``datastore`` through vCenter's /folder service."""
    host, port = endpoint(vcenter.url)
    datacenter = _datacenter_of(datastore.parent) if hasattr(datastore, "parent") else None
    query = urlencode({"dcPath": datacenter.name if datacenter else "", "dsName": datastore.name})
    return host, str(port), f"/folder/{quote(path)}?{query}"


def datastore_file(
    vcenter: Any, si: vim.ServiceInstance, datastore: Any, path: str, data: bytes | None = None
) -> bytes:
    """PUT ``data`` to (or, with None, GET) a datastore file, over the pinned TLS connection."""
    host, port, url = _datastore_url(vcenter, datastore, path)
    connection = http.client.HTTPSConnection(
        host, int(port), context=pinned_context(vcenter.certificate), timeout=TIMEOUT
    )
    try:
        headers = {"Cookie": si._stub.cookie}
        if data is None:
            connection.request("GET", url, headers=headers)
        else:
            headers["Content-Type"] = "application/octet-stream"
            connection.request("PUT", url, body=data, headers=headers)
        response = connection.getresponse()
        body = response.read()
        if response.status >= 300:
            raise VSphereError(f"vCenter answered {response.status} for the datastore file {path}")
        return body
    finally:
        connection.close()


def attach_iso(
    vcenter: Any, si: vim.ServiceInstance, vm_moref: str, datastore_moref: str, path: str, iso: bytes
) -> str:
    """Upload ``iso`` to ``path`` on the datastore ``datastore_moref`` (empty: the VM's first)
    and connect the VM's CD-ROM to it; returns ``[datastore] path``."""
    vm = vim.VirtualMachine(vm_moref, si._stub)
    datastore = vim.Datastore(datastore_moref, si._stub) if datastore_moref else vm.datastore[0]
    datastore_file(vcenter, si, datastore, path, iso)
    file_name = f"[{datastore.name}] {path}"
    config = vm.config
    assert config is not None  # only a VM vCenter cannot read (inaccessible, orphaned) has none
    devices = config.hardware.device
    cdrom = next((d for d in devices if isinstance(d, vim.vm.device.VirtualCdrom)), None)
    change = vim.vm.device.VirtualDeviceSpec()
    if cdrom is None:
        ide = next(
            d
            for d in devices
            if isinstance(d, vim.vm.device.VirtualIDEController) and len(d.device or []) < 2
        )
        cdrom = vim.vm.device.VirtualCdrom(controllerKey=ide.key, unitNumber=len(ide.device or []), key=-1)
        change.operation = vim.vm.device.VirtualDeviceSpec.Operation.add
    else:
        change.operation = vim.vm.device.VirtualDeviceSpec.Operation.edit
    cdrom.backing = vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=file_name)
    cdrom.connectable = vim.vm.device.VirtualDevice.ConnectInfo(
        startConnected=True, connected=True, allowGuestControl=False
    )
    change.device = cdrom
    WaitForTask(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[change])))
    return file_name
