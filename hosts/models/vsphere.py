"""vSphere as the portal knows it: the vCenters an Admin added (with the certificate
they confirmed), and the inventory last read from each (datacenters, clusters,
ESXi hosts, datastores, VMs). The inventory is vCenter's, mirrored: rows are keyed
by (vCenter, managed object id) and written only by hosts.vsphere.sync and the
watcher; a VM that vanished is marked ``gone``, not deleted, so links and history
survive a vCenter hiccup."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.fields import EncryptedTextField
from portal.models import Project
from portal.visible import VisibleQuerySet

PHOTON_GUEST_ID = "vmwarePhoton64Guest"


class VCenter(models.Model):
    name = models.CharField(max_length=100, unique=True)
    #: https://host[:port] (the SDK path /sdk is implied).
    url = models.CharField(max_length=300)
    username = models.CharField(max_length=150)
    password = EncryptedTextField()
    #: The leaf certificate a person confirmed (PEM): the only trust anchor for this vCenter.
    certificate = models.TextField(blank=True)
    #: SHA-256 of ``certificate`` as vSphere shows it (AB:CD:...); checked on every connection.
    thumbprint = models.CharField(max_length=95, blank=True)

    #: Register Photon VMs that match no portal host as new hosts of this project.
    auto_register_project = models.ForeignKey(
        Project,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="New Photon VMs become hosts of this project. Empty: only link existing hosts.",
    )
    enabled = models.BooleanField(default=True)

    # --- What the last connection saw ------------------------------------------
    version = models.CharField(max_length=100, blank=True)
    connected = models.BooleanField(default=False)
    last_sync = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "vCenter"

    def __str__(self) -> str:
        return self.name


class _Inventory(models.Model):
    """What every mirrored vSphere object has: its vCenter and managed object id."""

    vcenter = models.ForeignKey(VCenter, on_delete=models.CASCADE, related_name="+")
    #: Managed object ids are short on vCenter (vm-42) but may be paths (vcsim's datastores).
    moref = models.CharField(max_length=255)
    name = models.CharField(max_length=255)

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Datacenter(_Inventory):
    class Meta(_Inventory.Meta):
        constraints = [models.UniqueConstraint(fields=["vcenter", "moref"], name="datacenter_moref")]


class Cluster(_Inventory):
    """A compute resource: a cluster, or a standalone host's own compute resource."""

    datacenter = models.ForeignKey(Datacenter, null=True, on_delete=models.SET_NULL, related_name="clusters")
    is_cluster = models.BooleanField(default=True)

    class Meta(_Inventory.Meta):
        constraints = [models.UniqueConstraint(fields=["vcenter", "moref"], name="cluster_moref")]


class EsxHost(_Inventory):
    cluster = models.ForeignKey(Cluster, null=True, on_delete=models.SET_NULL, related_name="esx_hosts")
    datacenter = models.ForeignKey(Datacenter, null=True, on_delete=models.SET_NULL, related_name="+")
    connection_state = models.CharField(max_length=30, blank=True)
    power_state = models.CharField(max_length=30, blank=True)
    in_maintenance = models.BooleanField(default=False)

    class Meta(_Inventory.Meta):
        verbose_name = "ESXi host"
        constraints = [models.UniqueConstraint(fields=["vcenter", "moref"], name="esxhost_moref")]


class Datastore(_Inventory):
    datacenter = models.ForeignKey(Datacenter, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=30, blank=True)
    capacity = models.BigIntegerField(null=True, blank=True, help_text="Bytes.")
    free_space = models.BigIntegerField(null=True, blank=True, help_text="Bytes.")

    class Meta(_Inventory.Meta):
        constraints = [models.UniqueConstraint(fields=["vcenter", "moref"], name="datastore_moref")]


class PowerState(models.TextChoices):
    ON = "poweredOn", "On"
    OFF = "poweredOff", "Off"
    SUSPENDED = "suspended", "Suspended"


class VmQuerySet(VisibleQuerySet["VirtualMachine"]):
    # A VM is a project's through the host it is; one that is no host is the Admins' alone.
    project_path = "host__project"
    view_action = "vm.view"
    not_found = "No such virtual machine."

    def with_placement(self) -> VmQuerySet:
        """What a VM's page and the API show beside it: its vCenter, datacenter, cluster,
        ESXi host and the portal host it is."""
        return self.select_related("vcenter", "datacenter", "cluster", "esx_host", "host")

    def project_of(self, obj: VirtualMachine) -> int | None:
        return obj.host.project_id if obj.host_id is not None and obj.host is not None else None


class VirtualMachine(_Inventory):
    power_state = models.CharField(max_length=20, choices=PowerState.choices, blank=True, db_index=True)
    guest_id = models.CharField(max_length=80, blank=True)
    guest_full_name = models.CharField(max_length=255, blank=True)
    ip_address = models.CharField(max_length=64, blank=True, db_index=True)
    ip_addresses = models.JSONField(default=list, blank=True)
    guest_hostname = models.CharField(max_length=255, blank=True, db_index=True)
    cpus = models.PositiveIntegerField(null=True, blank=True)
    memory_mb = models.PositiveIntegerField(null=True, blank=True)
    esx_host = models.ForeignKey(EsxHost, null=True, on_delete=models.SET_NULL, related_name="vms")
    cluster = models.ForeignKey(Cluster, null=True, on_delete=models.SET_NULL, related_name="vms")
    datacenter = models.ForeignKey(Datacenter, null=True, on_delete=models.SET_NULL, related_name="vms")
    folder = models.CharField(max_length=255, blank=True)
    annotation = models.TextField(blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    tools_status = models.CharField(max_length=40, blank=True)
    instance_uuid = models.CharField(max_length=64, blank=True)
    #: [{"moref", "name", "created"}], oldest first, nested snapshots flattened.
    snapshots = models.JSONField(default=list, blank=True)
    is_photon = models.BooleanField(default=False, db_index=True)
    #: Marked as a template in vSphere (config.template): what provisioning may clone.
    is_template = models.BooleanField(default=False)

    #: The portal host this VM is (provisioning's clone, or an Admin's confirmation); its
    #: project decides who sees the VM.
    host = models.ForeignKey(
        "hosts.Host", null=True, blank=True, on_delete=models.SET_NULL, related_name="vms"
    )
    gone = models.BooleanField(default=False, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    objects = VmQuerySet.as_manager()

    class Meta(_Inventory.Meta):
        verbose_name = "virtual machine"
        constraints = [models.UniqueConstraint(fields=["vcenter", "moref"], name="vm_moref")]

    @property
    def powered_on(self) -> bool:
        return self.power_state == PowerState.ON


class VmTask(models.Model):
    """A power or snapshot action someone started from the portal, and how it went."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCESS = "success", "Succeeded"
        ERROR = "error", "Failed"

    vm = models.ForeignKey(VirtualMachine, on_delete=models.CASCADE, related_name="tasks")
    action = models.CharField(max_length=30)
    argument = models.CharField(max_length=255, blank=True, help_text="Snapshot name or moref.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    vsphere_task = models.CharField(max_length=80, blank=True)
    error = models.TextField(blank=True)
    started = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.vm}"

    @property
    def done(self) -> bool:
        return self.state in {self.State.SUCCESS, self.State.ERROR}
