"""Fixtures for the vSphere tests: the lab's vcsim added to the portal as an Admin would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from hosts.models import VCenter
from hosts.vsphere import client as vsphere


def add_vcenter(info: dict[str, Any], name: str = "lab", **fields: Any) -> VCenter:
    """A vCenter row with the lab's certificate pinned (what confirming it in the form stores)."""
    return VCenter.objects.create(
        name=name,
        url=info["url"],
        username=info["user"],
        password=info["password"],
        certificate=Path(info["certificate"]).read_text(),
        thumbprint=info["thumbprint"],
        **fields,
    )


@pytest.fixture
def lab_vc(db: None, lab_vcenter: dict[str, Any]) -> VCenter:
    return add_vcenter(lab_vcenter)


@pytest.fixture
def outside(lab_vcenter: dict[str, Any]) -> Iterator[vim.ServiceInstance]:
    """A pyvmomi session of its own: someone changing vCenter outside the portal."""
    pem = Path(lab_vcenter["certificate"]).read_text()
    si = vsphere.connect_pinned(lab_vcenter["url"], lab_vcenter["user"], lab_vcenter["password"], pem)
    yield si
    vsphere.disconnect(si)


def find_vm(si: vim.ServiceInstance, name: str) -> vim.VirtualMachine:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next(vm for vm in view.view if vm.name == name)
    finally:
        view.Destroy()
