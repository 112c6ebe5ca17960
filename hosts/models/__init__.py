"""The hosts app's models, one module per concern (add yours with one import line)."""

from __future__ import annotations

from .changes import Change, ChangeHost, Drift, FileBackup, Profile  # noqa: F401
from .deploys import DeployRequest  # noqa: F401
from .host import ENGINE_FACTS, Host, HostStatus, Tag
from .provision import ProvisionedVm, ProvisionQuota, ProvisionRequest  # noqa: F401
from .vsphere import Cluster, Datacenter, Datastore, EsxHost, VCenter, VirtualMachine, VmTask  # noqa: F401

__all__ = ["ENGINE_FACTS", "Host", "HostStatus", "Tag"]
