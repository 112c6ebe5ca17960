"""A host's patch status in the REST API (``GET /api/hosts/{id}/patches/``): what the host page's
Updates card shows, as the portal last read it (hosts.patches stores it; this reads the models
only, so the fleet does not depend on that package)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.models import Host, HostPatchStatus, PendingAdvisory
from portal.api_common import ERROR


class PackageChangeSerializer(serializers.Serializer):
    name = serializers.CharField()
    arch = serializers.CharField()
    installed = serializers.CharField(help_text="the installed version ([epoch:]version-release)")
    fixed = serializers.CharField(help_text="the version that fixes it, or newer")


class AdvisorySerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField(help_text="security, bugfix, enhancement (as updateinfo.xml says)")
    severity = serializers.CharField(help_text='Critical, Important, Moderate, Low, or "" when none is given')
    title = serializers.CharField()
    issued = serializers.CharField()
    cves = serializers.ListField(child=serializers.CharField())
    packages = PackageChangeSerializer(many=True)
    reboot_suggested = serializers.BooleanField()


class UpdateSerializer(serializers.Serializer):
    name = serializers.CharField()
    arch = serializers.CharField()
    installed = serializers.CharField()
    available = serializers.CharField()
    repository = serializers.CharField(help_text="the base URL of the repository that offers it")


class SecurityCountsSerializer(serializers.Serializer):
    critical = serializers.IntegerField()
    important = serializers.IntegerField()
    moderate = serializers.IntegerField()
    low = serializers.IntegerField()
    unrated = serializers.IntegerField()


class PatchStatusSerializer(serializers.Serializer):
    host = serializers.IntegerField()
    read_at = serializers.DateTimeField(
        allow_null=True, help_text="when the status shown was read; null: never"
    )
    tried_at = serializers.DateTimeField(allow_null=True, help_text="when a refresh last ran, good or not")
    last_error = serializers.CharField(help_text='why the last refresh failed ("" when it did not)')
    releasever = serializers.CharField()
    basearch = serializers.CharField()
    security = SecurityCountsSerializer(help_text="pending security advisories by severity")
    pending_updates = serializers.IntegerField()
    reboot_suggested = serializers.BooleanField()
    advisories = AdvisorySerializer(many=True)
    updates = UpdateSerializer(many=True, help_text="every pending update, with an advisory or not")


def patch_status(host: Host) -> dict[str, object]:
    found = HostPatchStatus.objects.filter(host=host).defer("installed").first() or HostPatchStatus(host=host)
    advisories = PendingAdvisory.objects.filter(host=host) if found.read_at is not None else []
    return {
        "host": host.pk,
        "read_at": found.read_at,
        "tried_at": found.tried_at,
        "last_error": found.last_error,
        "releasever": found.releasever,
        "basearch": found.basearch,
        "security": {
            "critical": found.critical,
            "important": found.important,
            "moderate": found.moderate,
            "low": found.low,
            "unrated": found.security_other,
        },
        "pending_updates": found.pending_updates,
        "reboot_suggested": found.reboot_suggested,
        "advisories": [
            {
                "id": a.advisory,
                "type": a.type,
                "severity": a.severity,
                "title": a.title,
                "issued": a.issued,
                "cves": a.cves,
                "packages": [
                    {"name": p["name"], "arch": p["arch"], "installed": p["from"], "fixed": p["to"]}
                    for p in a.packages
                ],
                "reboot_suggested": a.reboot_suggested,
            }
            for a in advisories
        ],
        "updates": [
            {
                "name": u["name"],
                "arch": u["arch"],
                "installed": u["from"],
                "available": u["to"],
                "repository": u["repo"],
            }
            for u in (found.updates if found.read_at is not None else [])
        ],
    }


# Typed as the viewset it is mixed into (mypy); at run time a plain mixin.
if TYPE_CHECKING:
    _APIView = GenericAPIView
else:
    _APIView = object


class HostPatches(_APIView):
    """Mixed into the hosts' viewset: ``/api/hosts/{id}/patches/``."""

    @extend_schema(
        summary="A host's patch status",
        description=(
            "Installed packages' pending updates and advisories as the portal last computed them "
            "from the host's RPM database and its repositories' metadata (read by the portal, "
            "refreshed on a schedule and on demand). Visible to whoever sees the host."
        ),
        responses={200: PatchStatusSerializer, 404: ERROR},
    )
    @action(detail=True, methods=["get"], url_path="patches", url_name="patches")
    def patches(self, request: Request, pk: str) -> Response:
        host = Host.objects.select_related("project").get_or_404(request.user, pk)
        return Response(PatchStatusSerializer(patch_status(host)).data)
