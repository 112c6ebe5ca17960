"""How the hosts app plugs into the core's registries: My work's rows and panels, the
dashboard's Hosts card, the watchers (and the fleet search's inventory into the engines
watcher), and every area's Celery tasks (Celery's
autodiscovery imports ``hosts.tasks`` only). Called once from ``HostsConfig.ready``;
the core never imports this app."""

from __future__ import annotations

from hosts import expiring as hosts_expiring
from hosts import peers as hosts_peers
from hosts import stale_work
from hosts.applications import live_rows as app_live_rows
from hosts.applications import operation_tasks
from hosts.applications import tasks as app_tasks
from hosts.changes import cards as change_cards
from hosts.changes import drift
from hosts.changes import tasks as change_tasks
from hosts.changes import work as change_work
from hosts.engine_objects import news as objects_news
from hosts.fleet import cards as fleet_cards
from hosts.fleet import container_rows
from hosts.fleet import counters as fleet_counters
from hosts.fleet import tasks as fleet_tasks
from hosts.fleet import watch as fleet_watch
from hosts.fleet import work as fleet_work
from hosts.inventory import keeping as inventory
from hosts.models import Host, ProvisionQuota, VCenter
from hosts.patches import maintenance as patch_windows
from hosts.patches import schedule as patch_schedule
from hosts.patches import tasks as patch_tasks
from hosts.provision import flow as provision
from hosts.provision import tasks as provision_tasks
from hosts.provision import work as provision_work
from hosts.stats import feed as stats_feed
from hosts.stats import follower as stats_follower
from hosts.vsphere import cards as vsphere_cards
from hosts.vsphere import tasks as vsphere_tasks
from hosts.vsphere import watch as vsphere_watch
from hosts.vsphere import work as vsphere_work
from portal import consumers, dashboard, expiry, peers, project_sections, watchers, work

#: Imported for Celery: their tasks are registered on import.
TASK_MODULES = (
    app_tasks,
    operation_tasks,
    change_tasks,
    fleet_tasks,
    patch_tasks,
    provision_tasks,
    vsphere_tasks,
)


#: An Admin's first hour, the hosts app's part (portal.dashboard.first_steps).
FIRST_STEPS = (
    dashboard.Step(
        "Add a vCenter",
        "hosts:vcenter_add",
        lambda: VCenter.objects.exists(),
        "its Photon VMs appear under vSphere, and new hosts can be cloned there",
        order=20,
    ),
    dashboard.Step(
        "Add a host",
        "hosts:add",
        lambda: Host.objects.exists(),
        "by its Docker endpoint, into a project",
        order=30,
    ),
    dashboard.Step(
        "Let a project provision hosts",
        "hosts:provision_quotas",
        lambda: ProvisionQuota.objects.filter(vcenters__isnull=False).exists(),
        "a provisioning quota on a vCenter",
        order=50,
    ),
)


def register() -> None:
    fleet_counters.connect()
    # What a webhook may never be aimed at (portal.peers): the engines and vCenters managed here.
    peers.register(hosts_peers.endpoints)
    # What alerts warn of before it lapses (portal.expiry): hosts' and vCenters' certificates.
    expiry.register(hosts_expiring.hosts)
    expiry.register(hosts_expiring.vcenters)
    # When an approved patch change may run: shown and kept on the project's page.
    project_sections.register(
        project_sections.Section("hosts/patches/project_windows.html", patch_windows.section)
    )
    work.register(
        sources=(change_work.rows, vsphere_work.rows, fleet_work.rows, provision_work.rows),
        panels=(fleet_work.panel, change_work.panel),
    )
    for card in (fleet_cards.CARD, vsphere_cards.CARD, change_cards.CARD):
        dashboard.register_card(card)
    dashboard.register_badge(change_cards.APPROVALS_BADGE)
    for step in FIRST_STEPS:
        dashboard.register_step(step)
    watchers.register("engines", fleet_watch.watch_engines)
    watchers.register("vcenters", vsphere_watch.watch_vcenters)
    watchers.register("drift", drift.watch_drift)
    watchers.register("provisioning", provision.watch_overdue)
    watchers.register("stale_work", stale_work.watch_stale_work)
    watchers.register("patches", patch_schedule.watch_patches)
    for listener in (app_live_rows.on_container, inventory.on_container):
        if listener not in container_rows.CONTAINER_LISTENERS:
            container_rows.CONTAINER_LISTENERS.append(listener)
    # The fleet search's copy of every engine (hosts.inventory), kept by the engines watcher.
    follower = fleet_watch.Follower(event=inventory.on_event, resync=inventory.resync)
    if follower not in fleet_watch.FOLLOWERS:
        fleet_watch.FOLLOWERS.append(follower)
    # A host page's live resources and every followed container's stats, kept an hour (hosts.stats).
    host_stats = (stats_follower.TOPIC, "hosts.stats.follower.follow")
    if host_stats not in consumers.FOLLOWERS:
        consumers.FOLLOWERS.append(host_stats)
    if stats_feed.on_stats not in fleet_watch.STATS_LISTENERS:
        fleet_watch.STATS_LISTENERS.append(stats_feed.on_stats)
    # A host page's images, volumes and networks, read again when the engine says they changed.
    objects_follower = fleet_watch.Follower(event=objects_news.on_event, resync=objects_news.on_resync)
    if objects_follower not in fleet_watch.FOLLOWERS:
        fleet_watch.FOLLOWERS.append(objects_follower)
