"""The hosts app's models, one module per concern (add yours with one import line)."""

from __future__ import annotations

from hosts.models.apps import (  # noqa: F401
    Application,
    ApplicationPlacement,
    AppQuota,
    AppTemplate,
    TemplateVersion,
)
from hosts.models.changes import Change, ChangeRun, Drift, FileBackup, Profile  # noqa: F401
from hosts.models.counts import ProjectHostCounts  # noqa: F401
from hosts.models.deploys import Deploy  # noqa: F401
from hosts.models.host import ENGINE_FACTS, Host, HostStatus, Tag
from hosts.models.inventory import EngineObject  # noqa: F401
from hosts.models.patches import (  # noqa: F401
    HostPatchStatus,
    MaintenanceWindow,
    PatchChange,
    PatchChangeStatus,
    PatchRun,
    PatchRunState,
    PendingAdvisory,
    PendingCve,
    RepoCache,
    SnapshotState,
)
from hosts.models.provision import ProvisionedVm, ProvisionQuota, ProvisionRequest  # noqa: F401
from hosts.models.vsphere import Cluster, Datacenter, Datastore, EsxHost, VCenter, VirtualMachine, VmTask  # noqa: F401

__all__ = ["ENGINE_FACTS", "Host", "HostStatus", "Tag"]
