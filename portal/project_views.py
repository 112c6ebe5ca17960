"""Projects and memberships, managed from the portal (Admins create projects;
Project admins manage their members). Every change goes into the audit trail."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import access, audit, people, project_sections, public_url
from .forms import ClarityForm
from .models import Project, Role
from .refused import Refused


class ProjectForm(ClarityForm, forms.ModelForm):
    class Meta:
        model = Project
        fields = ["name", "description"]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
        }


class MemberForm(ClarityForm, forms.Form):
    username = forms.CharField(max_length=150)
    # The least power first: who gets more is a decision, not a default.
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


def project_list(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    projects = access.projects(request.user).prefetch_related("memberships")
    return render(
        request,
        "portal/projects.html",
        {"projects": projects, "can_create": access.can(request.user, "portal.admin")},
    )


def project_create(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.admin")
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        project = form.save()
        audit.record("project.create", obj=project, project=project, after=form.cleaned_data)
        messages.success(request, f"Project {project.name} created.")
        return redirect("project-detail", pk=project.pk)
    return render(request, "portal/project_form.html", {"form": form})


def _visible_project(request: HttpRequest, pk: int) -> Project:
    # Outside a project, it does not exist: 404, not 403.
    return get_object_or_404(access.projects(request.user), pk=pk)


def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _project_page(request, _visible_project(request, pk), MemberForm())


def _project_page(request: HttpRequest, project: Project, form: MemberForm, **extra: object) -> HttpResponse:
    return render(
        request,
        "portal/project_detail.html",
        {
            "project": project,
            "memberships": project.memberships.select_related("user"),
            "can_manage": access.can(request.user, "project.manage_members", project),
            "may_create_people": access.can(request.user, "user.create"),
            "form": form,
            "roles": Role.choices,
            "sections": project_sections.for_project(request.user, project),
            **extra,
        },
        status=getattr(extra.get("refused"), "status", 200),
    )


@require_POST
def member_add(request: HttpRequest, pk: int) -> HttpResponse:
    project = _visible_project(request, pk)
    form = MemberForm(request.POST)
    try:
        added = people.add_member(
            project,
            request.user,
            request.POST.get("username", ""),
            request.POST.get("role", ""),
            create=request.POST.get("create") == "1",
        )
    except people.UnknownPerson as refusal:
        # Rendered, not redirected: an Admin gets the button that makes the person.
        return _project_page(request, project, form, refused=refusal, unknown=refusal)
    except Refused as refusal:
        return _project_page(request, project, form, refused=refusal)
    user = added.membership.user.get_username()
    if added.password_link:
        # Rendered, not redirected: the link is in this page once, never in a cookie or a log.
        link = public_url.absolute(request, added.password_link)
        return _project_page(request, project, MemberForm(), created={"username": user, "link": link})
    messages.success(request, f"{user} added as {added.membership.get_role_display()}.")
    return redirect("project-detail", pk=pk)


@require_POST
def member_change(request: HttpRequest, pk: int, membership_pk: int) -> HttpResponse:
    project = _visible_project(request, pk)
    access.require(request.user, "project.manage_members", project)
    membership = get_object_or_404(project.memberships.select_related("user"), pk=membership_pk)
    name = membership.user.get_username()
    if request.POST.get("remove"):
        people.remove_member(membership, request.user)
        messages.success(request, f"{name} removed from {project.name}.")
        return redirect("project-detail", pk=pk)
    try:
        people.change_role(membership, request.user, request.POST.get("role", ""))
    except Refused as refused:
        messages.error(request, refused.message)
        return redirect("project-detail", pk=pk)
    messages.success(request, f"{name} is now {membership.get_role_display()}.")
    return redirect("project-detail", pk=pk)
