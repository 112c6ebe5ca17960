"""The code flow against a stand-in provider: PKCE, state and nonce as mozilla-django-oidc
keeps them; a replayed state or a foreign nonce refused; users made from claims, never a
local account taken over; every sign-in and refusal audited."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import User
from django.test import Client

from portal.models import AuditEntry, Membership, Role
from sso.models import SsoAccount
from tests.conftest import PASSWORD
from tests.sso.conftest import CLIENT_ID, ISSUER, callback, person, start

pytestmark = pytest.mark.django_db


def refusal(response) -> str:  # type: ignore[no-untyped-def]
    return AuditEntry.objects.filter(action="sso.signin_refused").latest("pk").after["why"]


def test_the_login_page_offers_the_provider_only_while_it_is_enabled(client, provider) -> None:
    page = client.get("/accounts/login/?next=/hosts/").content.decode()
    assert 'name="password"' in page  # local sign-in stays
    # The page asks no database: it fetches the button once up (htmx).
    assert 'hx-get="/sso/button/?next=/hosts/"' in page
    button = client.get("/sso/button/?next=/hosts/").content.decode()
    assert "Sign in with Lab IdP" in button and 'href="/sso/authenticate/?next=/hosts/"' in button
    provider.enabled = False
    provider.save()
    assert "Sign in with" not in client.get("/sso/button/").content.decode()
    response = client.get("/sso/authenticate/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"


def test_the_browser_is_sent_with_state_nonce_and_a_pkce_challenge(client, provider) -> None:
    response = client.get("/sso/authenticate/")
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ISSUER}/authorize/"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
    assert query["scope"] == "openid profile email"
    assert query["redirect_uri"] == "http://testserver/sso/callback/"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) >= 43
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
    entry = client.session["oidc_states"][query["state"]]
    assert entry["nonce"] == query["nonce"] and entry["code_verifier"]


def test_a_mapped_person_signs_in_and_gets_the_role(client, mapped, ops, idp) -> None:
    idp.claims = person("sub-olivia", "olivia", "ops", "staff")
    response = callback(client, start(client, idp))
    assert response.status_code == 302 and response["Location"] == "/"
    user = User.objects.get(username="olivia")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert user.email == "olivia@idp.test" and not user.has_usable_password()
    assert Membership.objects.get(user=user, project=ops).role == Role.PROVISIONER
    assert SsoAccount.objects.get(user=user).subject == "sub-olivia"
    # The code went with PKCE's verifier and the client's secret.
    sent = idp.token_requests[-1]
    assert sent["code_verifier"] and sent["redirect_uri"] == "http://testserver/sso/callback/"
    actions = list(AuditEntry.objects.order_by("pk").values_list("action", flat=True))
    assert {"sso.user_create", "sso.member_add", "auth.login", "sso.signin"} <= set(actions)
    signin = AuditEntry.objects.get(action="sso.signin")
    assert signin.actor == user and signin.after["groups"] == ["ops", "staff"]


def test_next_is_kept_through_the_provider(client, provider, idp) -> None:
    idp.claims = person("sub-n", "nick", "staff")
    response = callback(client, start(client, idp, next_url="/projects/"))
    assert response["Location"] == "/projects/"


def test_a_replayed_state_is_refused(client, provider, idp) -> None:
    idp.claims = person("sub-olivia", "olivia")
    state = start(client, idp)
    assert callback(client, state)["Location"] == "/"
    client.logout()
    replay = callback(client, state)
    assert replay.status_code == 302 and replay["Location"] == "/accounts/login/"
    assert "already used" in refusal(replay)
    assert "_auth_user_id" not in client.session


def test_a_state_from_another_browser_is_refused(client, provider, idp, django_user_model) -> None:
    other = Client()
    state = start(other, idp)
    idp.claims = person("sub-olivia", "olivia")
    response = callback(client, state)
    assert response["Location"] == "/accounts/login/" and "not started here" in refusal(response)
    assert not django_user_model.objects.filter(username="olivia").exists()


def test_an_id_token_with_another_nonce_is_refused(client, provider, idp) -> None:
    idp.claims = person("sub-olivia", "olivia")
    state = start(client, idp)
    idp.nonce = "a nonce from another sign-in"
    response = callback(client, state)
    assert response["Location"] == "/accounts/login/"
    assert "Nonce" in refusal(response)
    assert not User.objects.filter(username="olivia").exists()
    # The state is spent: the same callback again does not get another try.
    assert "already used" in refusal(callback(client, state))


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"iss": "https://evil.test/o"}, "issued by"),
        ({"aud": "someone-else"}, "audience"),
        ({"aud": [CLIENT_ID, "other"], "azp": "other"}, "azp"),
    ],
)
def test_an_id_token_not_for_this_portal_is_refused(client, provider, idp, claims, why) -> None:
    idp.claims = person("sub-olivia", "olivia")
    idp.token_claims = claims
    response = callback(client, start(client, idp))
    assert response["Location"] == "/accounts/login/" and why in refusal(response)
    assert not User.objects.filter(username="olivia").exists()


def test_an_id_token_signed_by_another_key_is_refused(client, provider, idp) -> None:
    idp.claims = person("sub-olivia", "olivia")
    state = start(client, idp)
    real = idp.jwks()
    idp.key = rsa.generate_private_key(65537, 2048)
    idp.jwks = lambda: real  # type: ignore[method-assign]
    response = callback(client, state)
    assert response["Location"] == "/accounts/login/"
    assert not User.objects.filter(username="olivia").exists()


def test_a_code_the_provider_refuses_is_said_so(client, provider, idp) -> None:
    idp.claims = person("sub-olivia", "olivia")
    response = callback(client, start(client, idp), code="stale-code")
    assert response["Location"] == "/accounts/login/"
    assert "HTTP 400 (invalid_grant)" in refusal(response)


def test_the_provider_saying_no_is_shown(client, provider, idp) -> None:
    state = start(client, idp)
    response = client.get(
        "/sso/callback/", {"error": "access_denied", "error_description": "the user said no", "state": state}
    )
    assert response["Location"] == "/accounts/login/"
    assert refusal(response) == "Lab IdP refused the sign-in: the user said no"
    page = client.get("/accounts/login/").content.decode()
    assert "Lab IdP refused the sign-in: the user said no" in page
    assert state not in client.session["oidc_states"]


def test_a_local_account_of_the_same_name_is_never_taken_over(client, mapped, idp, make_user) -> None:
    root = make_user("root", admin=True)
    idp.claims = person("sub-root", "root", "ops")
    response = callback(client, start(client, idp))
    assert response["Location"] == "/accounts/login/"
    why = refusal(response)
    assert "root is an account of the portal that did not come from Lab IdP" in why
    assert why in client.get("/accounts/login/").content.decode()
    root.refresh_from_db()
    assert root.is_superuser and not SsoAccount.objects.exists()
    assert not Membership.objects.filter(user=root).exists()


def test_the_same_subject_signs_in_as_the_same_person_again(client, mapped, ops, idp) -> None:
    idp.claims = person("sub-olivia", "olivia", "ops")
    callback(client, start(client, idp))
    client.logout()
    idp.claims = person("sub-olivia", "olivia", "staff")  # taken out of ops at the provider
    assert callback(client, start(client, idp))["Location"] == "/"
    assert User.objects.filter(username="olivia").count() == 1
    assert not Membership.objects.filter(project=ops).exists()
    assert AuditEntry.objects.filter(action="sso.member_remove").exists()


def test_someone_deactivated_by_an_admin_stays_out(client, provider, idp) -> None:
    idp.claims = person("sub-olivia", "olivia")
    callback(client, start(client, idp))
    client.logout()
    User.objects.filter(username="olivia").update(is_active=False)
    response = callback(client, start(client, idp))
    assert "deactivated by an Admin" in refusal(response)
    assert "_auth_user_id" not in client.session


def test_a_password_sign_in_never_reaches_the_provider(client, provider, idp, make_user) -> None:
    make_user("bob")
    response = client.post("/accounts/login/", {"username": "bob", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert idp.token_requests == []


def test_a_flood_of_callbacks_from_one_address_is_braked(client, provider, settings) -> None:
    settings.THROTTLE_SSO = "3/60"
    address = "192.0.2.77"
    answers = [
        client.get("/sso/callback/", {"code": "x", "state": "y"}, REMOTE_ADDR=address) for _ in range(5)
    ]
    assert [a.status_code for a in answers] == [302, 302, 302, 429, 429]
    assert AuditEntry.objects.filter(action="sso.signin_refused").count() == 3
    assert client.get("/sso/authenticate/", REMOTE_ADDR="192.0.2.78").status_code == 302  # its own count


def test_a_next_elsewhere_is_not_followed(client, provider, idp) -> None:
    idp.claims = person("sub-n", "nick")
    response = callback(client, start(client, idp, next_url="https://evil.test/"))
    assert response["Location"] == "/"


def test_a_token_signed_with_the_client_secret_is_refused(client, provider, idp) -> None:
    """RS256 with the provider's key set only: an HS256 token (made with the shared secret) is not taken."""
    idp.claims = person("sub-olivia", "olivia")
    state = start(client, idp)
    idp.id_token = lambda: jwt.encode(  # type: ignore[method-assign]
        {"iss": ISSUER, "aud": CLIENT_ID, "sub": "sub-olivia", "exp": 9999999999, "nonce": idp.nonce},
        "client secret never shown, and long enough for HS256",
        algorithm="HS256",
    )
    response = callback(client, state)
    assert response["Location"] == "/accounts/login/"
    assert "signed with 'HS256', not RS256" in refusal(response)
    assert not User.objects.filter(username="olivia").exists()


def test_an_answer_of_the_wrong_shape_is_refused_not_an_error(client, provider, idp) -> None:
    idp.claims = person("sub-olivia", "olivia")
    state = start(client, idp)
    idp.jwks = lambda: {"keys": "not a list of keys"}  # type: ignore[method-assign]
    response = callback(client, state)
    assert response.status_code == 302 and "could not be read" in refusal(response)
