"""The fleet search in the REST API: ``GET /api/fleet-search/?q=words``, the same service as the
page (``search.search``: what the caller may see, at most 50 of each kind, ``more`` when there
were more). Engine text is given as the engine reported it: a client escapes it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.inventory import search
from portal.api_policy import StrictFilters


class FoundSerializer(serializers.Serializer):
    kind = serializers.CharField()
    engine_id = serializers.CharField(help_text="a container's or an image's id, a volume's name")
    name = serializers.CharField()
    image = serializers.CharField(help_text="a container's image; an image's tags, one per line")
    state = serializers.CharField(help_text="a container's state; a volume's driver")
    labels = serializers.DictField(child=serializers.CharField())
    ports = serializers.ListField(child=serializers.CharField())
    host = serializers.IntegerField(source="host_id")
    host_name = serializers.CharField(source="host.name")
    project = serializers.IntegerField(source="host.project_id")
    updated = serializers.DateTimeField(help_text="when the watcher last read it from the engine")


class MoreSerializer(serializers.Serializer):
    container = serializers.BooleanField()
    image = serializers.BooleanField()
    volume = serializers.BooleanField()


class AnswerSerializer(serializers.Serializer):
    words = serializers.ListField(child=serializers.CharField(), help_text="what was looked for")
    containers = FoundSerializer(many=True)
    images = FoundSerializer(many=True)
    volumes = FoundSerializer(many=True)
    more = MoreSerializer(help_text="per kind: more matched than the list holds (add a word)")


class OneAnswer(AutoSchema):
    """The search answers one object (its lists inside), though its route is a router's "list"."""

    def _is_list_view(self, serializer: Any = None) -> bool:
        return False


class FleetSearchViewSet(StrictFilters, viewsets.ViewSet):
    filters = {"q": "the words to find"}
    schema = OneAnswer()

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "q",
                str,
                description="words to find in a name, an image, a label (key=value) or a port; each must "
                f"match. Fewer than {search.MIN_LENGTH} characters find nothing.",
            )
        ],
        responses={200: AnswerSerializer},
        description="Containers, images and volumes across every host the caller may see, as the "
        "engines' watcher last read them.",
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = self.filter_params(request)
        found = search.search(request.user, params.get("q", ""))
        answer = {
            "words": found.words,
            "containers": found.containers,
            "images": found.images,
            "volumes": found.volumes,
            "more": {kind: found.more.get(kind, False) for kind in search.KINDS},
        }
        return Response(AnswerSerializer(answer).data)
