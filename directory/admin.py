from __future__ import annotations

from django.contrib import admin

from portal.admin import AuditedDeletes

from .forms import ServerForm
from .models import DirectoryAccount, DirectoryServer, GroupMapping


class GroupMappingInline(admin.TabularInline):
    model = GroupMapping
    extra = 1


@admin.register(DirectoryServer)
class DirectoryServerAdmin(AuditedDeletes):
    form = ServerForm  # the page's checks (URL scheme, PEM, DNs, filters) here too
    list_display = ["url", "enabled", "updated"]
    inlines = [GroupMappingInline]


@admin.register(DirectoryAccount)
class DirectoryAccountAdmin(AuditedDeletes):
    list_display = ["user", "dn", "admin_granted", "deactivated", "last_sync"]
    search_fields = ["user__username", "dn"]
    readonly_fields = ["user", "dn", "admin_granted", "deactivated", "last_sync"]
