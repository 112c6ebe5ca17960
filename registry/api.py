"""The REST API for registries: the list, and browsing repositories, tags and a tag's details.

Who sees a registry is ``Registry.objects.visible_to`` (as in the UI); what
a registry holds is read through ``registry.browse.Browser`` (cached, bounded),
never copied into the database. Deleting stays in the UI, behind its confirmation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from portal.api_common import ERROR
from portal.api_policy import Pages, StrictFilters

from .browse import Browser
from .clients.distribution import check_reference, check_repository
from .clients.errors import NotFound as RegistryNotFound
from .clients.errors import RegistryError
from .clients.harbor import check_project
from .models import Registry
from .tag_list import SORTS, list_tags


class RegistryFailed(APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The registry did not answer as expected."


class RegistrySerializer(serializers.ModelSerializer):
    class Meta:
        model = Registry
        # Credentials are secrets and never part of an answer; the user name is not.
        fields = [
            "id",
            "name",
            "kind",
            "url",
            "auth",
            "username",
            "verify_tls",
            "projects",
            "created",
            "updated",
        ]


class RepositorySerializer(serializers.Serializer):
    name = serializers.CharField()


class TagDetailsSerializer(serializers.Serializer):
    repository = serializers.CharField()
    tag = serializers.CharField()
    digest = serializers.CharField()
    media_type = serializers.CharField()
    known = serializers.BooleanField()
    manifest_size = serializers.IntegerField()
    annotations = serializers.DictField(child=serializers.CharField())
    images = serializers.ListField(child=serializers.DictField(), help_text="One per platform.")
    error = serializers.CharField(help_text="Set when this tag could not be read.")


def _page_of(item: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    return type(
        name,
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )


RepositoryPage = _page_of(RepositorySerializer, "PaginatedRepositoryList")
TagPage = _page_of(TagDetailsSerializer, "PaginatedTagDetailsList")

#: As every other list's (portal.api_policy.Pages): a page size over the most is refused, not cut.
PAGING = [
    OpenApiParameter("page", int),
    OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": Pages.max_page_size}),
]
REPOSITORY = OpenApiParameter("repository", str, required=True, description="e.g. library/photon")


def _number(params: Any, name: str, default: int, highest: int) -> int:
    text = params.get(name)
    if text in (None, ""):
        return default
    if not str(text).isdigit() or int(text) < 1:
        raise ValidationError({name: ["A whole number from 1."]})
    if name == "page_size" and int(text) > highest:
        raise ValidationError({name: [f"A whole number from 1 to {highest}."]})
    # A page past the end is a 404 however far past (Pages says so too).
    return min(int(text), highest)


def _paged(request: Request, total: int, rows: Callable[[int, int], list[Any]]) -> dict[str, Any]:
    """A page in the same shape as every other list of the API (count, next, previous, results)."""
    page = _number(request.query_params, "page", 1, 10**9)
    size = _number(request.query_params, "page_size", Pages.page_size, Pages.max_page_size)
    pages = max(1, math.ceil(total / size))
    if page > pages:
        raise NotFound("Invalid page.")
    url = request.build_absolute_uri()
    previous = None
    if page > 1:
        previous = (
            remove_query_param(url, "page") if page == 2 else replace_query_param(url, "page", page - 1)
        )
    return {
        "count": total,
        "next": replace_query_param(url, "page", page + 1) if page < pages else None,
        "previous": previous,
        "results": rows((page - 1) * size, size) if total else [],
    }


def _browse(registry: Registry, read: Callable[[Browser], Any]) -> Any:
    try:
        with Browser(registry) as browser:
            return read(browser)
    except RegistryNotFound as error:
        raise NotFound(str(error)) from None
    except RegistryError as error:
        raise RegistryFailed(str(error)) from None


class RegistryViewSet(StrictFilters, viewsets.ReadOnlyModelViewSet):
    """Registries shared with the caller's projects (``registry.view``); Admins see all."""

    serializer_class = RegistrySerializer
    filters: ClassVar[dict[str, str]] = {}

    def get_queryset(self) -> Any:
        registries = Registry.objects.visible_to(self.request.user)
        return registries.prefetch_related("projects").order_by("name", "pk")

    def _params(self, allowed: set[str]) -> dict[str, str]:
        unknown = sorted(set(self.request.query_params) - allowed - self.PAGING)
        if unknown:
            raise ValidationError(
                {"detail": f"Unknown filter(s): {', '.join(unknown)}. Known: {', '.join(sorted(allowed))}."}
            )
        # Paging is checked before the registry is asked: a bad page size is the caller's 400,
        # whatever the registry would answer.
        _number(self.request.query_params, "page", 1, 10**9)
        _number(self.request.query_params, "page_size", Pages.page_size, Pages.max_page_size)
        # PostgreSQL and the registries refuse NUL in text, and the schema says so: a 400 here
        # (StrictFilters' rule), never a filter quietly matching nothing.
        if any("\x00" in value for value in self.request.query_params.values()):
            raise ValidationError({"detail": "A filter value contains a NUL character."})
        # items() gives a key's last value (a list only for a key without values: never here).
        return {k: v for k, v in self.request.query_params.items() if k in allowed and isinstance(v, str)}

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.filter_params(request)
        return super().list(request, *args, **kwargs)

    @extend_schema(
        parameters=[
            *PAGING,
            OpenApiParameter("q", str, description="name contains"),
            OpenApiParameter("project", str, description="Harbor: the project to list (required there)"),
        ],
        responses={200: RepositoryPage, 502: ERROR},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def repositories(self, request: Request, pk: str) -> Response:
        registry = self.get_object()
        params = self._params({"q", "project"})
        query = params.get("q", "").strip()[:100].lower()
        if registry.kind == Registry.Kind.HARBOR:
            project = params.get("project", "")
            if not project:
                raise ValidationError({"project": ["Harbor lists repositories per project: name one."]})
            try:
                check_project(project)
            except RegistryError as error:
                raise ValidationError({"project": [str(error)]}) from None
            page = _number(request.query_params, "page", 1, 10**9)
            size = _number(request.query_params, "page_size", Pages.page_size, Pages.max_page_size)
            found = _browse(registry, lambda b: b.harbor_repositories(project, page, size, query))
            rows = [{"name": str(item.get("name", ""))} for item in found.items]
            # Harbor pages itself: ask for this page, then describe it in the API's own shape.
            return Response(_paged(request, found.total, lambda start, n: rows))
        names = _browse(registry, lambda b: b.repositories())
        if query:
            names = [name for name in names if query in name.lower()]
        names = sorted(names)
        return Response(
            _paged(request, len(names), lambda start, n: [{"name": x} for x in names[start : start + n]])
        )

    @extend_schema(
        parameters=[
            *PAGING,
            REPOSITORY,
            OpenApiParameter("q", str, description="tag name contains (any case)"),
            OpenApiParameter(
                "sort", str, enum=SORTS, description="version (default) or newest (creation date)"
            ),
        ],
        responses={200: TagPage, 502: ERROR},
        description="A repository's tags, newest version (or newest image) first, with their details.",
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def tags(self, request: Request, pk: str) -> Response:
        registry = self.get_object()
        params = self._params({"repository", "q", "sort"})
        repository = self._repository(params)
        sort = params.get("sort", SORTS[0])
        if sort not in SORTS:
            raise ValidationError({"sort": [f"One of: {', '.join(SORTS)}."]})

        def read(browser: Browser) -> dict[str, Any]:
            # The repository page's own list: the same filter, order and "no tags" rule.
            ordered = list_tags(browser, repository, sort=sort, query=params.get("q", "")).tags

            def rows(start: int, n: int) -> list[Any]:
                on_page = ordered[start : start + n]
                details = browser.tag_details(repository, on_page)
                return [dataclasses.asdict(details[tag]) for tag in on_page]

            return _paged(request, len(ordered), rows)

        return Response(_browse(registry, read))

    @extend_schema(
        parameters=[
            REPOSITORY,
            OpenApiParameter("reference", str, required=True, description="tag or digest"),
        ],
        responses={200: TagDetailsSerializer, 502: ERROR},
        description="A tag's (or digest's) platforms, layers, config and annotations.",
    )
    @action(detail=True, methods=["get"], url_path="tag", pagination_class=None, filter_backends=[])
    def tag_details(self, request: Request, pk: str) -> Response:
        registry = self.get_object()
        params = self._params({"repository", "reference"})
        repository = self._repository(params)
        reference = params.get("reference", "")
        try:
            check_reference(reference)
        except RegistryError as error:
            raise ValidationError({"reference": [str(error)]}) from None
        details = _browse(registry, lambda b: b.tag(repository, reference))
        if details.error:
            if details.error_kind == "NotFound":
                raise NotFound(details.error)
            raise RegistryFailed(details.error)
        return Response(dataclasses.asdict(details))

    def _repository(self, params: dict[str, str]) -> str:
        repository = params.get("repository", "")
        try:
            return check_repository(repository)
        except RegistryError as error:
            raise ValidationError({"repository": [str(error)]}) from None
