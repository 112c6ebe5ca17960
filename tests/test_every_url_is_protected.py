"""Deny by default: every URL the portal serves, asked anonymously, sends to login.

It walks the URL configuration itself, so a view added later without thought for
access fails here until it is protected or deliberately listed as public.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

#: The only views an anonymous visitor may see, and why.
PUBLIC = {
    "login",  # to sign in
    "healthz",  # load balancers and monitors: no secrets in it
    "healthz-live",  # a load balancer's liveness probe: says only "ok"
    "healthz-ready",  # a load balancer's readiness probe: as /healthz, without the workers
    "admin:login",  # the admin's own sign-in form
    "logout",  # signing out when signed out changes nothing
    # a new person, or one whose password was reset, chooses a password: the one-time link is the credential
    "password-set",
    # a new host's cloud-init phones home here: no account, its one-time token is the credential
    "hosts:provision_enroll",
    # Photon's installer fetches its kickstart (ks=...): no account, a one-time token
    "hosts:provision_kickstart",
    # single sign-on's code flow: the start sends to the provider, the provider sends back to
    # the callback, both before anyone is signed in (the state in the session is the check)
    "sso:authenticate",
    "sso:callback",
    # the login page's "Sign in with ...", fetched after the page (which asks no database)
    "sso:button",
}

SAMPLES = {
    "drf_format_suffix": ".json",
    "int": "1",
    "path": "x/y",
    "slug": "x",
    "str": "x",
    "uuid": "00000000-0000-0000-0000-000000000001",
}


def walk(patterns, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            yield f"{namespace}{p.name}" if p.name else "", prefix + str(p.pattern)


def sample_for_group(match: re.Match[str]) -> str:
    """A value the named group's own pattern accepts (an id, a hex container id, a format)."""
    name, pattern = match[1], match[2]
    candidates = ["json"] if name == "format" else ["1", "0123456789ab", "x"]
    return next((c for c in candidates if re.fullmatch(pattern, c)), "1")


def concrete(route: str) -> str:
    # Regex routes (the admin's, DRF's): fill named groups, drop anchors.
    route = re.sub(r"\(\?P<(\w+)>([^)]*)\)", sample_for_group, route)
    route = re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLES.get(m[1] or "str", "x"), route)
    return "/" + route.replace("^", "").replace("$", "").replace("\\", "").replace("/?", "/")


ROUTES = sorted(set(walk(get_resolver().url_patterns)))


def test_the_walk_finds_the_portal_and_the_admin() -> None:
    names = {name for name, _ in ROUTES}
    assert {"dashboard", "hosts:index", "registry:index", "admin:index", "healthz"} <= names


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "route"), [r for r in ROUTES if r[0] not in PUBLIC], ids=lambda v: str(v))
def test_anonymous_is_sent_to_login(client, name: str, route: str) -> None:
    path = concrete(route)
    response = client.get(path)
    if path.startswith("/api/"):
        assert response.status_code in {401, 403}, path
        return
    assert response.status_code == 302, f"{name} ({path}) answered {response.status_code} to an anonymous GET"
    assert response["Location"].startswith(("/accounts/login/", "/admin/login/")), response["Location"]


@pytest.mark.django_db
def test_public_views_answer_anonymously(client) -> None:
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/admin/login/").status_code == 200


def test_url_names_are_unique() -> None:
    """reverse() takes one of two same-named routes silently; a redirect would land on the wrong one."""
    named = [name for name, _ in walk(get_resolver().url_patterns) if name]
    duplicates = {name for name in named if named.count(name) > 1}
    assert duplicates == set()
