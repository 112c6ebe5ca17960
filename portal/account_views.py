"""People (Admins: who may sign in) and one's own account (password, browsers, tokens).
Each view translates; the rules are portal.accounts'."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from . import access, accounts, public_url
from .forms import ClarityForm
from .http import AuthenticatedHttpRequest
from .refused import Refused


class PersonForm(ClarityForm, forms.Form):
    username = forms.CharField(max_length=150, label="User name")
    name = forms.CharField(max_length=300, required=False, label="Full name")
    email = forms.CharField(max_length=254, required=False, label="E-mail")
    admin = forms.BooleanField(required=False, label="Admin (may do anything in the portal)")


def people(request: AuthenticatedHttpRequest) -> HttpResponse:
    access.require(request.user, "user.manage")
    form = PersonForm(request.POST or None)
    invitation = None
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            invitation = accounts.create(
                request.user, data["username"], email=data["email"], name=data["name"], admin=data["admin"]
            )
            form = PersonForm()
        except Refused as refused:
            form.add_error(refused.field or None, refused.message)
            status = 400
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "portal/people.html",
        {
            "people": accounts.people(),
            "form": form,
            "invitation": invitation,
            "link": public_url.absolute(request, invitation.path) if invitation else "",
        },
        status=status,
    )


def _person(pk: int) -> Any:
    return get_object_or_404(get_user_model(), pk=pk)


@require_POST
def person_reset(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    access.require(request.user, "user.manage")
    person = _person(pk)
    try:
        invitation = accounts.reset_password(request.user, person)
    except Refused as refused:
        messages.error(request, refused.message)
        return redirect("people")
    return render(
        request,
        "portal/person_link.html",
        {"person": person, "link": public_url.absolute(request, invitation.path)},
    )


@require_POST
def person_active(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    access.require(request.user, "user.manage")
    person = _person(pk)
    active = request.POST.get("active") == "1"
    try:
        accounts.set_active(request.user, person, active)
    except Refused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, f"{person.username} {'enabled' if active else 'disabled and signed out'}.")
    return redirect("people")


def person_delete(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    access.require(request.user, "user.manage")
    person = _person(pk)
    if request.method == "POST":
        try:
            accounts.delete(request.user, person)
        except Refused as refused:
            messages.error(request, refused.message)
        else:
            messages.success(request, f"{person.username} deleted.")
        return redirect("people")
    memberships = person.memberships.select_related("project")
    return render(request, "portal/person_delete.html", {"person": person, "memberships": memberships})


def account(request: AuthenticatedHttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    form = PasswordChangeForm(request.user, request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            form.save()
            update_session_auth_hash(request, form.user)  # this browser stays signed in
            accounts.password_changed(request.user)
            messages.success(request, "Password changed.")
            return redirect("account")
        status = 400
    current = request.session.session_key
    browsers = [
        {
            "current": session.session_key == current,
            "expires": session.expire_date,
            "data": _signed_in(session.get_decoded()),
            "key": session.session_key,
        }
        for session in accounts.sessions_of(request.user)
    ]
    return render(
        request,
        "portal/account.html",
        {
            "form": form,
            "browsers": browsers,
            "has_password": request.user.has_usable_password(),
            "memberships": request.user.memberships.select_related("project"),
        },
        status=status,
    )


def _signed_in(data: dict[str, Any]) -> dict[str, Any]:
    at = data.get(accounts.SIGNED_IN_AT)
    try:
        when = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        when = None
    return {
        "at": when,
        "address": str(data.get(accounts.SIGNED_IN_FROM) or ""),
        "agent": str(data.get(accounts.SIGNED_IN_WITH) or ""),
    }


@require_POST
def account_sign_out_elsewhere(request: AuthenticatedHttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    ended = accounts.sign_out_elsewhere(request.user, request.session.session_key)
    messages.success(request, f"Signed out of {ended} other browser{'s' if ended != 1 else ''}.")
    return redirect("account")


class PortalSetPasswordForm(ClarityForm, SetPasswordForm):
    pass


@method_decorator(login_not_required, name="dispatch")
class PasswordSetView(auth_views.PasswordResetConfirmView):
    """The one-time link of a new person, or of one whose password an Admin reset."""

    template_name = "registration/password_set.html"
    form_class = PortalSetPasswordForm
    success_url = reverse_lazy("login")
    reset_url_token = "choose"  # noqa: S105 - the URL word that stands in for the token, not a secret

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        accounts.password_changed(form.user)
        messages.success(self.request, "Your password is set: sign in with it.")
        return response
