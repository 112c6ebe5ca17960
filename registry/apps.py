from __future__ import annotations

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Registries"

    def ready(self) -> None:
        # Imported here: registry.work reads the models, loaded after this module (app loading).
        from portal import work  # app loading
        from registry import work as registry_work  # app loading

        work.register(panels=(registry_work.panel,))
