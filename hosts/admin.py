from __future__ import annotations

from django.contrib import admin

from portal.fields import SecretAwareModelForm

from .models import Host, Tag


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    form = SecretAwareModelForm
    list_display = ["name", "project", "docker_url", "status", "insecure", "enabled", "last_seen"]
    list_filter = ["status", "project", "insecure", "enabled", "tags"]
    search_fields = ["name", "docker_url", "address"]
    filter_horizontal = ["tags"]
    readonly_fields = [
        "status",
        "failures",
        "last_seen",
        "last_error",
        "os_name",
        "os_version",
        "kernel",
        "engine_version",
        "cpus",
        "memory",
        "containers_running",
        "containers_total",
    ]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ["name"]
