"""The Django admin for the portal's shared models. Audit entries are read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .fields import SecretAwareModelForm
from .models import AuditEntry, Credential, Event, Membership, Project

admin.site.site_header = "Photon Portal administration"
admin.site.site_title = "Photon Portal"


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "created"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]
    autocomplete_fields = ["user", "project"]


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    form = SecretAwareModelForm
    list_display = ["name", "kind", "username", "project", "created"]
    list_filter = ["kind", "project"]
    search_fields = ["name", "username"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
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
class EventAdmin(admin.ModelAdmin):
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
