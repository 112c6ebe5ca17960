from __future__ import annotations

from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from . import access_news, accounts, audit, dashboard  # noqa: F401 - audit connects the trail's handlers on import
        from .models import Membership, Project  # app loading

        access_news.connect()
        accounts.connect()
        dashboard.register_step(
            dashboard.Step("Create a project", "project-create", lambda: Project.objects.exists(), order=10)
        )
        dashboard.register_step(
            dashboard.Step(
                "Add people to a project",
                "projects",
                lambda: Membership.objects.exists(),
                "Viewers, Provisioners and Project admins",
                order=60,
            )
        )
