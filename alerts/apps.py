from __future__ import annotations

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        # Imported only now: they use the models, which Django loads after this module.
        from portal import events, watchers

        # As above: routing and the expiry check read alerts' own models.
        from . import expiry_check, routing

        # The core announces events; it never imports this app (import-linter).
        events.event_recorded.connect(routing.on_event_recorded, dispatch_uid="alerts.routing")
        watchers.register("alerts.due", routing.watch_due)
        watchers.register("alerts.expiry", expiry_check.watch_expiry)
