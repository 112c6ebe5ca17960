from __future__ import annotations

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Registries"

    def ready(self) -> None:
        # Imported here: these read the models, loaded after this module (app loading).
        from hosts.engine_objects import origins as image_origins  # app loading
        from hosts.fleet import deploy  # app loading
        from portal import dashboard, expiry, work  # app loading
        from registry import cards, expiring, origins, pull  # app loading
        from registry import work as registry_work  # app loading
        from registry.models import Registry  # app loading

        work.register(panels=(registry_work.panel,))
        # Registries' CA certificates, warned of before they lapse (portal.expiry).
        expiry.register(expiring.registries)
        dashboard.register_card(cards.CARD)
        dashboard.register_step(
            dashboard.Step(
                "Add a registry",
                "registry:add",
                lambda: Registry.objects.exists(),
                "Harbor or Docker Registry v2, shared with projects",
                order=40,
            )
        )
        if pull.login_for not in deploy.PULL_LOGINS:
            deploy.PULL_LOGINS.append(pull.login_for)
        if origins.origins_for not in image_origins.ORIGIN_READERS:
            image_origins.ORIGIN_READERS.append(origins.origins_for)
