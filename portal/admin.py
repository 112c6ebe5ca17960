"""The Django admin for the portal's shared models. Audit entries are read-only, and
every delete made here is in the audit trail (``AuditedDeletes``, used by every app's admin)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from . import audit
from .fields import SecretAwareModelForm
from .models import AuditEntry, Credential, Event, Membership, Project

admin.site.site_header = "Photon Portal administration"
admin.site.site_title = "Photon Portal"


class AuditedDeletes(admin.ModelAdmin):
    """A ModelAdmin whose deletes, one object or "delete selected", write one audit
    entry per object deleted. Each entry is written before its object goes, in the
    same transaction: a delete that fails leaves no entry, and one that succeeds
    cannot leave none."""

    def __init__(self, model: type[models.Model], admin_site: admin.AdminSite) -> None:
        super().__init__(model, admin_site)
        audit.deletes_recorded_by_admin(model)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            audit.record_admin_deletion(obj, bulk=False)
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            for obj in queryset:
                audit.record_admin_deletion(obj, bulk=True)
            super().delete_queryset(request, queryset)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(AuditedDeletes):
    list_display = ["name", "description", "created"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(AuditedDeletes):
    list_display = ["project", "user", "role"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]
    autocomplete_fields = ["user", "project"]


@admin.register(Credential)
class CredentialAdmin(AuditedDeletes):
    form = SecretAwareModelForm
    list_display = ["name", "kind", "username", "project", "created"]
    list_filter = ["kind", "project"]
    search_fields = ["name", "username"]


@admin.register(AuditEntry)
class AuditEntryAdmin(AuditedDeletes):
    list_display = ["at", "actor_name", "address", "action", "object_repr", "project"]
    list_filter = ["action", "project"]
    search_fields = ["actor_name", "action", "object_repr"]
    date_hierarchy = "at"

    # The trail is evidence: nobody adds, edits or deletes it by hand.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(AuditedDeletes):
    list_display = ["at", "severity", "object_repr", "message", "project"]
    list_filter = ["severity", "project"]
    search_fields = ["message", "object_repr"]
    date_hierarchy = "at"

    # Like the audit trail: a record of what happened, not something to edit.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
