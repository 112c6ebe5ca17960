from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from hosts.applications import quota
from hosts.changes.desired import validate_settings
from hosts.changes.errors import ChangeError
from hosts.models import (
    ENGINE_FACTS,
    Application,
    ApplicationPlacement,
    AppQuota,
    AppTemplate,
    Change,
    ChangeRun,
    Drift,
    Host,
    HostPatchStatus,
    MaintenanceWindow,
    PatchChange,
    PatchRun,
    PendingAdvisory,
    PendingCve,
    Profile,
    RepoCache,
    Tag,
    TemplateVersion,
    VCenter,
    VirtualMachine,
    VmTask,
)
from hosts.models.provision import ProvisionedVm, ProvisionQuota, ProvisionRequest
from portal.admin import AuditedDeletes
from portal.fields import SecretAwareModelForm


@admin.register(Host)
class HostAdmin(AuditedDeletes):
    form = SecretAwareModelForm
    list_display = ["name", "project", "docker_url", "status", "insecure", "enabled", "last_seen"]
    list_filter = ["status", "project", "insecure", "enabled", "tags"]
    search_fields = ["name", "docker_url", "address"]
    filter_horizontal = ["tags"]
    readonly_fields = ["status", "failures", "last_seen", "last_error", *ENGINE_FACTS]


@admin.register(Tag)
class TagAdmin(AuditedDeletes):
    search_fields = ["name"]


# --- vSphere (inventory rows are written by sync; read-only here) -------------------------------


@admin.register(VCenter)
class VCenterAdmin(AuditedDeletes):
    form = SecretAwareModelForm
    list_display = ["name", "url", "username", "connected", "last_sync", "enabled"]
    readonly_fields = ["certificate", "thumbprint", "version", "connected", "last_sync", "last_error"]


class ReadOnlyAdmin(AuditedDeletes):
    """What the portal learns from outside (vCenter, runs): looked at, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(VirtualMachine)
class VirtualMachineAdmin(ReadOnlyAdmin):
    list_display = ["name", "vcenter", "power_state", "guest_id", "ip_address", "host", "is_template", "gone"]
    list_filter = ["vcenter", "power_state", "is_template", "gone"]
    search_fields = ["name", "ip_address", "moref"]


@admin.register(VmTask)
class VmTaskAdmin(ReadOnlyAdmin):
    list_display = ["vm", "action", "state", "started", "finished"]


# --- Configuration changes -------------------------------------------------------------------------


class ProfileAdminForm(forms.ModelForm):
    class Meta:
        model = Profile
        fields = ["project", "name", "description", "settings", "hosts", "tags", "created_by"]

    def clean_settings(self) -> Any:
        # The admin is one more way in: the same rules as the profile form and the API.
        try:
            return validate_settings(self.cleaned_data["settings"])
        except ChangeError as exc:
            raise forms.ValidationError([p.message for p in exc.problems] or [str(exc)]) from None


@admin.register(Profile)
class ProfileAdmin(AuditedDeletes):
    form = ProfileAdminForm
    list_display = ["name", "project", "created_by"]
    list_filter = ["project"]
    search_fields = ["name"]


class ChangeRunInline(admin.TabularInline):
    model = ChangeRun
    fields = readonly_fields = ("host", "state", "step", "reason")
    extra = 0
    can_delete = False


@admin.register(Change)
class ChangeAdmin(ReadOnlyAdmin):
    list_display = ["title", "project", "profile", "status", "created_by", "approved_by", "created"]
    list_filter = ["status", "project"]
    inlines = [ChangeRunInline]


@admin.register(Drift)
class DriftAdmin(ReadOnlyAdmin):
    list_display = ["host", "profile", "state"]
    list_filter = ["state"]


# --- Provisioning ----------------------------------------------------------------------------------


@admin.register(ProvisionQuota)
class ProvisionQuotaAdmin(AuditedDeletes):
    """Where an Admin lets a project provision at all (no quota row: no provisioning)."""

    list_display = ["project", "max_vms", "max_cpus", "max_memory_mb"]
    filter_horizontal = ["vcenters"]
    autocomplete_fields = ["templates"]


class ProvisionedVmInline(admin.TabularInline):
    model = ProvisionedVm
    fields = readonly_fields = ("name", "state", "detail", "moref", "host", "token_expires", "token_used")
    extra = 0
    can_delete = False


@admin.register(ProvisionRequest)
class ProvisionRequestAdmin(ReadOnlyAdmin):
    list_display = ["name_pattern", "project", "count", "requester", "created"]
    list_filter = ["project"]
    inlines = [ProvisionedVmInline]


# --- Applications (saved and deployed through the portal's rules: read-only here) -------------------


class TemplateVersionInline(admin.TabularInline):
    model = TemplateVersion
    fields = readonly_fields = ("number", "note", "created_by", "created")
    extra = 0
    can_delete = False


@admin.register(AppTemplate)
class AppTemplateAdmin(ReadOnlyAdmin):
    """Saved through hosts.applications.catalog (every file checked whole): looked at here."""

    list_display = ["name", "project", "created_by", "updated"]
    list_filter = ["project"]
    search_fields = ["name"]
    inlines = [TemplateVersionInline]


class ApplicationPlacementInline(admin.TabularInline):
    model = ApplicationPlacement
    fields = readonly_fields = ("service", "replica", "host", "memory", "cpus", "reason")
    extra = 0
    can_delete = False


@admin.register(Application)
class ApplicationAdmin(ReadOnlyAdmin):
    list_display = ["name", "project", "template", "state", "created_by", "created"]
    list_filter = ["state", "project"]
    search_fields = ["name"]
    # Not the variables: their values are secrets, never shown back.
    fields = ["name", "project", "template", "version", "previous_version", "state", "outcome", "source"]
    inlines = [ApplicationPlacementInline]


@admin.register(AppQuota)
class AppQuotaAdmin(AuditedDeletes):
    """Where an Admin limits what a project's applications reserve (no row: no limit)."""

    list_display = ["project", "max_containers", "max_memory_mb", "max_cpus", "in_use"]
    autocomplete_fields = ["project"]

    @admin.display(description="in use")
    def in_use(self, obj: AppQuota) -> str:
        return quota.describe(obj.project_id)


# --- Patch status (kept by hosts.patches: read from hosts and repositories, never edited) ---------


@admin.register(RepoCache)
class RepoCacheAdmin(ReadOnlyAdmin):
    list_display = ["url", "revision", "packages", "advisories", "fetched_at", "checked_at"]
    search_fields = ["url"]
    # The compressed metadata is megabytes of bytes: nothing to read on a page.
    exclude = ["metadata"]


@admin.register(HostPatchStatus)
class HostPatchStatusAdmin(ReadOnlyAdmin):
    list_display = [
        "host",
        "critical",
        "important",
        "moderate",
        "low",
        "pending_updates",
        "read_at",
        "tried_at",
    ]
    search_fields = ["host__name"]


@admin.register(PendingAdvisory)
class PendingAdvisoryAdmin(ReadOnlyAdmin):
    list_display = ["host", "advisory", "type", "severity", "reboot_suggested"]
    list_filter = ["type", "severity"]
    search_fields = ["advisory", "host__name"]


@admin.register(PendingCve)
class PendingCveAdmin(ReadOnlyAdmin):
    list_display = ["cve", "host", "advisory"]
    search_fields = ["cve", "host__name"]


# --- Patch changes (decided and applied through their pages and the API, audited there) ----------


class PatchRunInline(admin.TabularInline):
    model = PatchRun
    fields = readonly_fields = ("host", "batch", "state", "step", "reason", "snapshot_state")
    extra = 0
    can_delete = False


@admin.register(PatchChange)
class PatchChangeAdmin(ReadOnlyAdmin):
    list_display = ["title", "project", "status", "created_by", "approved_by", "created"]
    list_filter = ["status", "project"]
    inlines = [PatchRunInline]


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(ReadOnlyAdmin):
    """Kept by each project's Project admins on its page (audited there)."""

    list_display = ["project", "weekday", "start", "duration_minutes"]
    list_filter = ["project"]
