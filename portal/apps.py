from __future__ import annotations

from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from . import access_news, audit  # noqa: F401 - audit connects the trail's handlers on import

        access_news.connect()
