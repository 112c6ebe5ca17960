"""A person signs in through the lab's OpenID Connect provider: "Sign in with Lab IdP"
on the portal's login page, the provider's own login form, and back on the dashboard
with the project role their group is mapped to."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from portal.models import Project, Role
from sso.backend import current_provider
from sso.discovery import discover
from sso.models import GroupMapping, Provider


def configure(lab: dict[str, Any]) -> Project:
    found = discover(lab["issuer"], lab["ca_pem"])
    provider = Provider.objects.create(
        enabled=True,
        display_name="Lab IdP",
        issuer=lab["issuer"],
        ca_certificate=lab["ca_pem"],
        client_id=lab["client_id"],
        client_secret=lab["client_secret"],
        discovered_issuer=found.issuer,
        authorization_endpoint=found.authorization_endpoint,
        token_endpoint=found.token_endpoint,
        userinfo_endpoint=found.userinfo_endpoint,
        jwks_uri=found.jwks_uri,
        token_basic_auth=found.token_basic_auth,
    )
    ops = Project.objects.create(name="Ops")
    GroupMapping.objects.create(
        provider=provider, group=lab["mapped_group"], project=ops, role=Role.PROVISIONER
    )
    assert current_provider() == provider
    return ops


def test_sign_in_through_the_provider_lands_on_the_dashboard_with_the_mapped_role(
    daphne_factory, make_user, browser, screenshot, lab_oidc
) -> None:
    make_user("admin", admin=True)
    configure(lab_oidc)
    server = daphne_factory("daphne-sso")
    # The provider's certificate is from the lab CA, which this throwaway browser does not
    # know; the portal itself checks it against the pinned CA.
    page = browser.new_context(ignore_https_errors=True).new_page()
    page.goto(server.url + "/")
    sign_in = page.locator("#sso-sign-in")
    expect(sign_in).to_have_text("Sign in with Lab IdP")
    expect(page.locator("#id_password")).to_be_visible()  # local sign-in is still offered
    screenshot(page, "login")
    sign_in.click()

    expect(page.locator("h1")).to_have_text("Lab identity provider")
    assert page.url.startswith(lab_oidc["url"] + "/accounts/login/")
    page.fill("#id_username", "olivia")
    page.fill("#id_password", lab_oidc["users"]["olivia"]["password"])
    page.click("#provider-submit")

    expect(page.locator("h2")).to_have_text("Dashboard")
    assert page.url == server.url + "/"
    expect(page.locator("main")).to_contain_text("Ops")
    expect(page.locator("main")).to_contain_text("Provisioner")
    screenshot(page, "dashboard")
    page.context.close()
