from __future__ import annotations

from django.apps import AppConfig


class HostsConfig(AppConfig):
    name = "hosts"
    verbose_name = "Hosts"

    def ready(self) -> None:
        """Plug the hosts app into the core's registries: My work's rows and panels, the
        dashboard's Hosts card, the watchers. The core never imports this app."""
        # Imported here, not at the top: these modules use the models, which Django loads
        # after this module (app loading, not a cycle).
        from hosts.changes import drift  # app loading
        from hosts.changes import tasks as change_tasks  # noqa: F401  Celery autodiscovers tasks.py only
        from hosts.changes import work as change_work
        from hosts.fleet import status  # app loading
        from hosts.fleet import watch as fleet_watch
        from hosts.fleet import work as fleet_work
        from hosts.provision import flow as provision  # app loading
        from hosts.provision import work as provision_work
        from hosts.vsphere import watch as vsphere_watch  # app loading
        from hosts.vsphere import work as vsphere_work
        from portal import dashboard, watchers, work  # app loading

        work.register(
            sources=(change_work.rows, vsphere_work.rows, fleet_work.rows, provision_work.rows),
            panels=(fleet_work.panel, change_work.panel),
        )
        dashboard.register(status.dashboard_panel)
        watchers.register("engines", fleet_watch.watch_engines)
        watchers.register("vcenters", vsphere_watch.watch_vcenters)
        watchers.register("drift", drift.watch_drift)
        watchers.register("provisioning", provision.watch_overdue)
