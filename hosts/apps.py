from __future__ import annotations

from django.apps import AppConfig


class HostsConfig(AppConfig):
    name = "hosts"
    verbose_name = "Hosts"

    def ready(self) -> None:
        # Celery's autodiscovery imports only tasks.py; the change tasks (and vSphere's) live beside it.
        from hosts.changes import tasks as change_tasks  # noqa: F401
