from __future__ import annotations

from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    name = "directory"
    verbose_name = "Directory (LDAP / Active Directory)"

    def ready(self) -> None:
        # Imported only now: they use the models, which Django loads after this module.
        from directory import registrations

        registrations.register()
