"""The REST API for a project's members: list, add, change a role, remove.

Thin, like the project page: the rules and the audit are ``portal.people``'s (add_member,
change_role, remove_member), so the API refuses what the page refuses, with its sentence.
The API never makes people: a user name that cannot sign in yet is refused.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from . import access, people
from .api_common import JSON_ONLY, MAX_ID, DetailSerializer, JsonSerializer
from .api_policy import StrictFilters
from .models import Membership, Project, Role


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    role = serializers.ChoiceField(choices=Role.choices, read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "project", "username", "role"]


class MemberAddSerializer(JsonSerializer):
    username = serializers.CharField(
        max_length=150, help_text="Someone who can sign in already: the API never makes people."
    )
    role = serializers.ChoiceField(choices=Role.choices)


class MemberRefusalSerializer(serializers.Serializer):
    """Why an add was refused in its state: already a member (``detail``), or a deactivated
    person (on ``username``, as the page shows it on that field)."""

    detail = serializers.CharField(required=False)
    username = serializers.ListField(child=serializers.CharField(), required=False)


class MemberRoleSerializer(JsonSerializer):
    role = serializers.ChoiceField(choices=Role.choices)


def _id(text: str) -> int:
    # Routed loosely (any path segment), checked here: a forged id is no object, never an error.
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_ID):
        raise Http404("No such object.")
    return int(text)


PROJECT_PATH = OpenApiParameter("project_pk", int, OpenApiParameter.PATH, description="the project's id")
MEMBER_PATH = OpenApiParameter("id", int, OpenApiParameter.PATH, description="the membership's id")


@extend_schema_view(
    list=extend_schema(parameters=[PROJECT_PATH]),
    retrieve=extend_schema(parameters=[PROJECT_PATH, MEMBER_PATH]),
    create=extend_schema(
        parameters=[PROJECT_PATH],
        request=MemberAddSerializer,
        responses={201: MemberSerializer, 409: MemberRefusalSerializer},
    ),
    partial_update=extend_schema(
        parameters=[PROJECT_PATH, MEMBER_PATH],
        request=MemberRoleSerializer,
        responses={200: MemberSerializer},
    ),
    destroy=extend_schema(
        parameters=[PROJECT_PATH, MEMBER_PATH],
        responses={200: OpenApiResponse(DetailSerializer, description="`detail`: who left which project.")},
    ),
)
class MemberViewSet(
    StrictFilters,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """A project's members: anyone who sees the project lists them (``project.view``); a
    Project admin of it (``project.manage_members``) adds, changes and removes them."""

    parser_classes = JSON_ONLY
    serializer_class = MemberSerializer
    # PATCH changes a role; a whole-membership PUT would have nothing more to say.
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def project(self) -> Project:
        # Outside a project, it does not exist: 404, not 403 (as the project page).
        project = access.projects(self.request.user).filter(pk=_id(self.kwargs["project_pk"])).first()
        if project is None:
            raise Http404("No such project.")
        return project

    def get_queryset(self) -> QuerySet[Membership]:
        if self.action == "list":
            self.filter_params(self.request)  # no filters: an unknown one is a 400 that names it
        return self.project().memberships.select_related("user", "project").order_by("user__username", "pk")

    def get_object(self) -> Membership:
        membership = self.get_queryset().filter(pk=_id(self.kwargs["pk"])).first()
        if membership is None:
            raise Http404("No such member.")
        return membership

    def _managed(self) -> Project:
        project = self.project()
        # Before the body is read: who may not manage members learns nothing from its checks.
        access.require(self.request.user, "project.manage_members", project)
        return project

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        project = self._managed()
        body = MemberAddSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        added = people.add_member(project, request.user, data["username"], data["role"], create=False)
        return Response(MemberSerializer(added.membership).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self._managed()
        membership = self.get_object()
        # PATCH: what is left out stays as it is (an empty body changes nothing, audits nothing).
        body = MemberRoleSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        if "role" in body.validated_data:
            people.change_role(membership, request.user, body.validated_data["role"])
        return Response(MemberSerializer(membership).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        project = self._managed()
        membership = self.get_object()
        people.remove_member(membership, request.user)
        # A JSON answer, like every other (not a bare 204): the page's own sentence.
        return Response({"detail": f"{membership.user.get_username()} removed from {project.name}."})
