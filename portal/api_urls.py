"""The REST API's URLs: the portal's own viewsets and the apps', on one router.

Root wiring, like ``portal.urls``: the one module of the API that names the apps.
"""

from __future__ import annotations

from csp.decorators import csp_update
from django.contrib.auth.decorators import login_not_required
from django.urls import URLPattern, URLResolver, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import routers

from hosts.applications import api as apps_api
from hosts.applications import app_api
from hosts.changes import api as changes_api
from hosts.fleet import api as fleet_api
from hosts.inventory import api as inventory_api
from hosts.patches import change_api as patches_api
from hosts.provision import api as provision_api
from hosts.vsphere import api as vsphere_api
from registry import api as registry_api

from . import api, api_members


class Router(routers.DefaultRouter):
    # JSON only: no format-suffix routes (/api/audit.json) to document or probe.
    include_format_suffixes = False


#: Register app viewsets with basename "api-…": the UI's URL names must never collide.
router = Router()
router.register("projects", api.ProjectViewSet, basename="api-project")
router.register(
    r"projects/(?P<project_pk>[^/.]+)/members", api_members.MemberViewSet, basename="api-project-member"
)
router.register("audit", api.AuditViewSet, basename="api-audit")
router.register("events", api.EventViewSet, basename="api-event")
# The apps' viewsets, after the portal's own.
router.register("hosts", fleet_api.HostViewSet, basename="api-host")
router.register("fleet-search", inventory_api.FleetSearchViewSet, basename="api-fleet-search")
router.register("vcenters", vsphere_api.VCenterViewSet, basename="api-vcenter")
router.register("vms", vsphere_api.VmViewSet, basename="api-vm")
router.register("vm-tasks", vsphere_api.VmTaskViewSet, basename="api-vm-task")
router.register("provision-requests", provision_api.ProvisionRequestViewSet, basename="api-provision-request")
router.register("profiles", changes_api.ProfileViewSet, basename="api-profile")
router.register("changes", changes_api.ChangeViewSet, basename="api-change")
router.register("patch-changes", patches_api.PatchChangeViewSet, basename="api-patch-change")
router.register("registries", registry_api.RegistryViewSet, basename="api-registry")
router.register("app-templates", apps_api.TemplateViewSet, basename="api-app-template")
router.register("applications", app_api.ApplicationViewSet, basename="api-application")


class ApiDocsView(SpectacularSwaggerSplitView):
    """Swagger UI inside the portal's frame (its header and menus, a way back), not a bare page."""

    template_name = "portal/api_docs.html"


def _api_views(patterns: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    # DRF authenticates (token or session) inside the view; the login-redirect
    # middleware must not send API clients to an HTML sign-in page first.
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            pattern.callback = login_not_required(pattern.callback)
    return patterns


urlpatterns = _api_views(
    [
        path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
        # The split view serves its start-up script as a file: the CSP allows no inline
        # script. Swagger UI styles itself inline: on this page alone, styles may be.
        path(
            "docs/",
            csp_update({"style-src": ["'unsafe-inline'"]})(ApiDocsView.as_view(url_name="api-schema")),
            name="api-docs",
        ),
        *router.urls,
    ]
)
