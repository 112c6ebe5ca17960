"""The two public steps of the code flow, mozilla-django-oidc's views reading the
Provider row: "Sign in with …" sends the browser to the provider with a fresh state,
nonce and PKCE challenge kept in the session; the callback takes each state once (a
replay finds it gone), has the backend check what came back, and signs the person in
or says on the login page why not. Every sign-in and refusal is audited."""

from __future__ import annotations

from typing import Any

from django.contrib import auth, messages
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET
from django.views.generic import View
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from portal import audit, throttle

from .accounts import groups_in
from .backend import PATH, OIDCBackend, current_provider, library_settings, setting

#: The session key mozilla-django-oidc keeps each state's nonce and code verifier under.
STATES = "oidc_states"


@require_GET
def button(request: HttpRequest) -> HttpResponse:
    """The login page's "Sign in with …", or nothing while no provider is enabled (or the
    database is away: the local form still shows)."""
    try:
        provider = current_provider()
    except DatabaseError:
        provider = None
    context = {"provider": provider, "next": request.GET.get("next", "")}
    return render(request, "sso/sign_in_button.html", context)


def refuse(request: HttpRequest, why: str, **details: Any) -> HttpResponse:
    """Back to the login page, saying why; on the audit trail with the reason."""
    audit.record("sso.signin_refused", request=request, after={"why": why, **details})
    messages.error(request, why)
    return redirect("login")


class SignInStart(OIDCAuthenticationRequestView):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The library's own __init__ reads its settings; the row is read per request instead.
        View.__init__(self, *args, **kwargs)
        self.values: dict[str, Any] = {}

    def get_settings(self, attr: str, *default: Any) -> Any:
        return setting(self.values, attr, *default)

    def get(self, request: HttpRequest) -> HttpResponse:
        provider = current_provider()
        if provider is None:
            messages.error(request, "Single sign-on is turned off: sign in with a portal account.")
            return redirect("login")
        self.values = library_settings(provider)
        self.OIDC_OP_AUTH_ENDPOINT = provider.authorization_endpoint
        self.OIDC_RP_CLIENT_ID = provider.client_id
        response: HttpResponse = super().get(request)
        return response


class SignInCallback(OIDCAuthenticationCallbackView):
    def get(self, request: HttpRequest) -> HttpResponse:
        provider = current_provider()
        name = provider.display_name if provider is not None else "single sign-on"
        states = request.session.get(STATES)
        state = request.GET.get("state", "")
        if request.GET.get("error"):
            if isinstance(states, dict) and state in states:
                del states[state]  # the library does the same: a refused state is spent too
                request.session.modified = True
            said = request.GET.get("error_description") or request.GET["error"]
            return refuse(request, f"{name} refused the sign-in: {said}", error=request.GET["error"][:100])
        code = request.GET.get("code")
        if not code or not state:
            return refuse(request, "The sign-in came back without its code: sign in again.")
        if not isinstance(states, dict) or state not in states:
            # Never started in this browser, or already used: a replay is refused here.
            return refuse(request, "This sign-in was already used or was not started here: sign in again.")
        entry = states.pop(state)
        request.session.modified = True
        request.session.save()
        backend = OIDCBackend()
        user = backend.authenticate(
            request, nonce=entry.get("nonce"), code_verifier=entry.get("code_verifier")
        )
        if user is None or not user.is_active:
            return refuse(request, backend.refusal or f"{name} did not complete the sign-in: sign in again.")
        auth.login(request, user, backend=PATH)
        groups = groups_in(backend.claims, provider.groups_claim if provider is not None else "")
        audit.record(
            "sso.signin",
            actor=user,
            request=request,
            after={"subject": str(backend.claims.get("sub", "")), "groups": sorted(groups)},
        )
        return HttpResponseRedirect(self.success_url)  # the "next" kept at the start, or the dashboard

    def get_settings(self, attr: str, *default: Any) -> Any:
        return setting({"LOGIN_REDIRECT_URL": "dashboard"}, attr, *default)


# Both steps are reached anonymously and write (a session, an audit row): braked per address.
start = throttle.per_address("sso_start", "THROTTLE_SSO")(SignInStart.as_view())
callback = throttle.per_address("sso_callback", "THROTTLE_SSO")(SignInCallback.as_view())
