"""How the hosts app plugs into the core's registries: My work's rows and panels, the
dashboard's Hosts card, the watchers, and every area's Celery tasks (Celery's
autodiscovery imports ``hosts.tasks`` only). Called once from ``HostsConfig.ready``;
the core never imports this app."""

from __future__ import annotations

from hosts.changes import drift
from hosts.changes import tasks as change_tasks
from hosts.changes import work as change_work
from hosts.fleet import status
from hosts.fleet import tasks as fleet_tasks
from hosts.fleet import watch as fleet_watch
from hosts.fleet import work as fleet_work
from hosts.provision import flow as provision
from hosts.provision import tasks as provision_tasks
from hosts.provision import work as provision_work
from hosts.vsphere import tasks as vsphere_tasks
from hosts.vsphere import watch as vsphere_watch
from hosts.vsphere import work as vsphere_work
from portal import dashboard, watchers, work

#: Imported for Celery: their tasks are registered on import.
TASK_MODULES = (change_tasks, fleet_tasks, provision_tasks, vsphere_tasks)


def register() -> None:
    work.register(
        sources=(change_work.rows, vsphere_work.rows, fleet_work.rows, provision_work.rows),
        panels=(fleet_work.panel, change_work.panel),
    )
    dashboard.register(status.dashboard_panel)
    watchers.register("engines", fleet_watch.watch_engines)
    watchers.register("vcenters", vsphere_watch.watch_vcenters)
    watchers.register("drift", drift.watch_drift)
    watchers.register("provisioning", provision.watch_overdue)
