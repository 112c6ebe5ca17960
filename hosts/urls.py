from __future__ import annotations

from django.urls import path

from hosts.applications import app_views, discovery_views
from hosts.applications import operation_views as app_operations
from hosts.applications import views as apps
from hosts.changes import views as changes
from hosts.console import views as console
from hosts.engine_objects import views as engine_objects
from hosts.fleet import container_edit, host_parts
from hosts.fleet import log_download as fleet_log
from hosts.fleet import views as fleet
from hosts.inventory import views as inventory
from hosts.patches import change_views as patch_changes
from hosts.patches import views as patches
from hosts.provision import quota_views as provision_quotas
from hosts.provision import views as provision
from hosts.stats import views as stats
from hosts.vsphere import views as vsphere

app_name = "hosts"
urlpatterns = [
    # --- fleet: hosts and containers ---
    path("", fleet.index, name="index"),
    path("add/", fleet.host_add, name="add"),
    path("verify/", fleet.host_verify, name="verify"),
    path("deploy/", fleet.deploy_to, name="deploy_to"),
    path("search/", inventory.find, name="search"),
    path("<int:pk>/", fleet.host_detail, name="host"),
    path("<int:pk>/edit/", fleet.host_edit, name="edit"),
    path("<int:pk>/verify/", fleet.host_verify, name="verify_existing"),
    path("<int:pk>/toggle/", fleet.host_toggle, name="toggle"),
    path("<int:pk>/remove/", fleet.host_delete, name="remove"),
    path("<int:pk>/deploy/", fleet.deploy, name="deploy"),
    path("<int:pk>/rotate/", changes.host_rotate, name="rotate"),
    path("<int:pk>/containers/<str:container_id>/", fleet.container_detail, name="container"),
    path("<int:pk>/containers/<str:container_id>/remove/", fleet.container_remove, name="container_remove"),
    path("<int:pk>/containers/<str:container_id>/log/", fleet_log.container_log, name="container_log"),
    path(
        "<int:pk>/containers/<str:container_id>/console/", console.container_console, name="container_console"
    ),
    path(
        "<int:pk>/containers/<str:container_id>/edit/", container_edit.container_edit, name="container_edit"
    ),
    path(
        "<int:pk>/containers/<str:container_id>/recreate/",
        fleet.container_recreate,
        name="container_recreate",
    ),
    path(
        "<int:pk>/containers/<str:container_id>/<str:action>/",
        fleet.container_action,
        name="container_action",
    ),
    # --- a host's images, volumes and networks ---
    path("<int:pk>/images/prune/", engine_objects.images_prune, name="images_prune"),
    path("<int:pk>/images/<str:image_id>/remove/", engine_objects.image_remove, name="image_remove"),
    path("<int:pk>/images/<str:image_id>/tag/", engine_objects.image_tag, name="image_tag"),
    path("<int:pk>/objects/", engine_objects.section, name="engine_objects"),
    path("<int:pk>/drift/", host_parts.host_drift, name="host_drift"),
    path("<int:pk>/updates/", patches.host_updates, name="host_updates"),
    path("<int:pk>/updates/check/", patches.host_refresh, name="patches_refresh"),
    path("updates/check/", patches.fleet_refresh, name="patches_refresh_fleet"),
    # --- patch changes (plan, approve, apply in batches) and projects' maintenance windows ---
    path("updates/changes/", patch_changes.patch_changes, name="patch_changes"),
    path("updates/changes/new/", patch_changes.patch_new, name="patch_new"),
    path("updates/changes/<int:pk>/", patch_changes.patch_change, name="patch_change"),
    path("updates/changes/<int:pk>/<slug:action>/", patch_changes.patch_change_act, name="patch_change_act"),
    path("updates/windows/<int:pk>/add/", patch_changes.window_add, name="window_add"),
    path(
        "updates/windows/<int:pk>/<int:window_id>/remove/", patch_changes.window_remove, name="window_remove"
    ),
    path("<int:pk>/stats/", stats.stats_history, name="stats_history"),
    path("<int:pk>/volumes/new/", engine_objects.volume_new, name="volume_new"),
    path("<int:pk>/volumes/prune/", engine_objects.volumes_prune, name="volumes_prune"),
    path("<int:pk>/volumes/<str:name>/remove/", engine_objects.volume_remove, name="volume_remove"),
    path("<int:pk>/networks/new/", engine_objects.network_new, name="network_new"),
    path("<int:pk>/networks/prune/", engine_objects.networks_prune, name="networks_prune"),
    path("<int:pk>/networks/<str:network_id>/remove/", engine_objects.network_remove, name="network_remove"),
    # --- vSphere: vCenters and VMs ---
    path("vsphere/", vsphere.inventory, name="vsphere"),
    path("vsphere/vcenters/", vsphere.vcenters, name="vcenters"),
    path("vsphere/vcenters/add/", vsphere.vcenter_add, name="vcenter_add"),
    path("vsphere/vcenters/confirm/", vsphere.vcenter_confirm, name="vcenter_confirm"),
    path("vsphere/vcenters/<int:pk>/sync/", vsphere.vcenter_sync, name="vcenter_sync"),
    path("vsphere/vms/<int:pk>/", vsphere.vm_detail, name="vm"),
    path("vsphere/vms/<int:pk>/action/", vsphere.vm_action, name="vm_action"),
    path("vsphere/vms/<int:pk>/events/", vsphere.vm_events, name="vm_events"),
    path("vsphere/vms/<int:pk>/link/", vsphere.vm_link, name="vm_link"),
    path("vsphere/vms/<int:pk>/unlink/", vsphere.vm_unlink, name="vm_unlink"),
    # --- provisioning: clone new hosts, their one-time enrollment ---
    path("provision/", provision.requests_list, name="provision"),
    path("provision/new/", provision.request_new, name="provision_new"),
    path("provision/<int:pk>/", provision.request_detail, name="provision_request"),
    path("provision/quotas/", provision_quotas.quotas, name="provision_quotas"),
    path("provision/quotas/<int:project_pk>/", provision_quotas.quota_edit, name="provision_quota"),
    path("provision/vms/<int:pk>/cancel/", provision.vm_cancel, name="provision_vm_cancel"),
    path("provision/vms/<int:pk>/delete/", provision.vm_delete, name="provision_vm_delete"),
    path("provision/vms/<int:pk>/seed.iso", provision.vm_seed_iso, name="provision_vm_seed"),
    path("provision/vms/<int:pk>/seed/attach/", provision.vm_seed_attach, name="provision_vm_seed_attach"),
    path("provision/enroll/<str:token>/", provision.enroll, name="provision_enroll"),
    path("provision/kickstart/new/", provision.kickstart_new, name="provision_kickstart_new"),
    path("provision/kickstart/<str:token>/", provision.kickstart, name="provision_kickstart"),
    # --- configuration changes ---
    path("changes/", changes.changes, name="changes"),
    path("changes/profiles/new/", changes.profile_edit, name="profile_new"),
    path("changes/profiles/<int:pk>/", changes.profile_edit, name="profile_edit"),
    path("changes/profiles/<int:pk>/plan/", changes.change_plan, name="change_plan"),
    path("changes/drift/check/", changes.drift_check, name="drift_check"),
    path("changes/drift/<int:pk>/fix/", changes.drift_fix, name="drift_fix"),
    path("changes/<int:pk>/", changes.change_detail, name="change"),
    path("changes/<int:pk>/approve/", changes.change_approve, name="change_approve"),
    path("changes/<int:pk>/reject/", changes.change_reject, name="change_reject"),
    path("changes/<int:pk>/apply/", changes.change_apply, name="change_apply"),
    path("changes/<int:pk>/revert/", changes.change_revert, name="change_revert"),
    # --- applications: templates from Compose files ---
    path("apps/", apps.apps, name="apps"),
    path("apps/unmanaged/", apps.apps_unmanaged, name="apps_unmanaged"),
    path("apps/templates/new/", apps.template_new, name="app_template_new"),
    path("apps/templates/<int:pk>/", apps.template_detail, name="app_template"),
    path("apps/templates/<int:pk>/edit/", apps.template_edit, name="app_template_edit"),
    path("apps/templates/<int:pk>/export/", apps.template_export, name="app_template_export"),
    path("apps/templates/<int:pk>/remove/", apps.template_remove, name="app_template_remove"),
    path("apps/templates/<int:pk>/deploy/", app_views.deploy, name="app_deploy"),
    path("apps/<int:pk>/", app_views.application_detail, name="app"),
    path("apps/<int:pk>/roll-back/", app_views.application_roll_back, name="app_roll_back"),
    path("apps/<int:pk>/remove/", app_views.application_remove, name="app_remove"),
    path("apps/<int:pk>/update/", app_views.application_update, name="app_update"),
    path("apps/<int:pk>/operate/<str:action>/", app_operations.operate, name="app_operate"),
    path("apps/<int:pk>/scale/", app_operations.scale, name="app_scale"),
    path("apps/adopt/", discovery_views.adopt, name="app_adopt"),
]
