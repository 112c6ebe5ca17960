from __future__ import annotations

from django.contrib import admin

from portal.admin import AuditedDeletes

from .forms import RegistryForm
from .models import DeletePrefix, Registry


class DeletePrefixInline(admin.TabularInline):
    """Per project, where its Project admins may delete (none: Admins only)."""

    model = DeletePrefix
    extra = 1


@admin.register(Registry)
class RegistryAdmin(AuditedDeletes):
    # The same form as the portal's page: the registry is checked before it is saved.
    form = RegistryForm
    list_display = ["name", "kind", "url", "auth", "username", "verify_tls", "updated"]
    list_filter = ["kind", "auth", "projects"]
    search_fields = ["name", "url", "username"]
    filter_horizontal = ["projects"]
    inlines = [DeletePrefixInline]
