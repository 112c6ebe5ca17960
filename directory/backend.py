"""Sign-in with the directory: django-auth-ldap's backend, configured from the
DirectoryServer row at each sign-in. After Django's ModelBackend in
AUTHENTICATION_BACKENDS, so local accounts sign in first and without the directory."""

from __future__ import annotations

import logging
from typing import Any

import ldap
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django_auth_ldap.backend import LDAPBackend

from . import accounts
from .connection import explain, ldap_settings
from .models import DirectoryAccount, DirectoryServer

log = logging.getLogger(__name__)


def current_server() -> DirectoryServer | None:
    return DirectoryServer.objects.filter(enabled=True).order_by("pk").first()


def tell(request: HttpRequest | None, sentence: str) -> None:
    """Shown on the login page above the form (base.html renders messages)."""
    if request is not None and hasattr(request, "_messages"):
        messages.error(request, sentence)


class DirectoryBackend(LDAPBackend):
    server: DirectoryServer | None = None
    request: HttpRequest | None = None

    def configure(self, server: DirectoryServer) -> None:
        self.server = server
        self.settings = ldap_settings(server)

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        server = current_server()
        if server is None:
            return None
        self.configure(server)
        self.request = request
        return super().authenticate(request, username=username, password=password, **kwargs)

    def authenticate_ldap_user(self, ldap_user: Any, password: str) -> Any:
        user = ldap_user.authenticate(password)
        if user is None or self.server is None:
            return None
        try:
            accounts.refresh(self.server, user, ldap_user, signing_in=True)
        except accounts.AccountRefused as refused:
            tell(self.request, str(refused))
            return None
        except ldap.LDAPError as exc:
            log.warning("directory sign-in of %s stopped: %s", user.username, exc)
            tell(self.request, explain(exc, self.server))
            return None
        user.refresh_from_db()
        return user if user.is_active else None

    def get_or_build_user(self, username: str, ldap_user: Any) -> tuple[Any, bool]:
        user, built = super().get_or_build_user(username, ldap_user)
        if not built and not DirectoryAccount.objects.filter(user=user).exists():
            # A local account of that name: the directory never signs in as it (nor takes
            # over a local Admin). Caught by django-auth-ldap: the sign-in just fails.
            raise ldap_user.AuthenticationFailed(f"{username} is a local account")
        return user, built

    def get_user(self, user_id: int) -> Any:
        # The session's user, from the database: no LDAP on every request.
        user = get_user_model()._default_manager.filter(pk=user_id).first()
        return user if user is not None and user.is_active else None

    def get_group_permissions(self, user: Any, obj: Any = None) -> set[str]:
        return set()  # rights are portal.access's, from memberships; none from LDAP groups


def directory_unreachable(
    sender: Any, context: str, user: Any, request: Any, exception: Any, **kw: Any
) -> None:
    """django-auth-ldap's ldap_error signal: the directory failed during a sign-in."""
    server = current_server()
    if context in {"authenticate", "search_for_user_dn"} and server is not None:
        if getattr(request, "_directory_told", False):
            return  # one sentence per sign-in, however many lookups failed
        if request is not None:
            request._directory_told = True
        tell(
            request,
            explain(exception, server) + " Directory accounts cannot sign in now; local accounts can.",
        )
