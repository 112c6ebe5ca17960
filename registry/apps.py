from __future__ import annotations

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Registries"

    def ready(self) -> None:
        # Imported here: these read the models, loaded after this module (app loading).
        from hosts.fleet import deploy  # app loading
        from portal import work  # app loading
        from registry import pull  # app loading
        from registry import work as registry_work  # app loading

        work.register(panels=(registry_work.panel,))
        if pull.login_for not in deploy.PULL_LOGINS:
            deploy.PULL_LOGINS.append(pull.login_for)
