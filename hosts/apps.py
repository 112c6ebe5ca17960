from __future__ import annotations

from django.apps import AppConfig


class HostsConfig(AppConfig):
    name = "hosts"
    verbose_name = "Hosts"

    def ready(self) -> None:
        # Imported only now: it uses the models, which Django loads after this module
        # (app loading, not a cycle).
        from hosts import registrations

        registrations.register()
