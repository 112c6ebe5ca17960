"""A registry that misbehaves gets a clear message, within bounded time, and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.urls import reverse

from registry.models import Registry
from tests.registry.misbehaving import Server, misbehaving

#: (mode, words the person reads)
CASES = [
    ("500", "failed with HTTP 500 (UNKNOWN storage backend exploded)"),
    ("html", "answered with HTML instead of JSON"),
    ("truncated", "cut its answer short"),
    ("huge-declared", "sent 50.0 MB where at most 8.0 MB is expected"),
    ("huge-chunked", "sent more than 8.0 MB; stopped reading"),
    ("redirect", "redirected to another host (localhost:"),
    ("slow", "did not answer within 0.5 s"),
    ("drip", "too slow"),
    ("token-refuses", "the token service at 127.0.0.1:"),
    ("realm-elsewhere", "not on 127.0.0.1; the portal does not send credentials there"),
]


@pytest.fixture
def server(settings) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    settings.REGISTRY_TIMEOUT = 0.5
    settings.REGISTRY_DEADLINE = 2.0
    with misbehaving() as peer:
        yield peer


def form_data(url: str, **extra: str) -> dict[str, str]:
    return {
        "name": "bad",
        "kind": "distribution",
        "url": url,
        "auth": "basic",
        "username": "u",
        "password": "p",
        **extra,
    }


@pytest.mark.parametrize(("mode", "message"), CASES, ids=[c[0] for c in CASES])
def test_adding_a_misbehaving_registry_says_why_and_saves_nothing(  # type: ignore[no-untyped-def]
    client, admin, server: Server, mode: str, message: str
) -> None:
    server.mode = mode
    client.force_login(admin)
    response = client.post(reverse("registry:add"), form_data(server.url))
    assert response.status_code == 200
    text = response.content.decode()
    assert "The registry could not be used" in text
    assert message.replace("'", "&#x27;") in text, text[text.find("alert-text") :][:400]
    assert not Registry.objects.exists()


@pytest.mark.parametrize(("mode", "message"), CASES, ids=[c[0] for c in CASES])
def test_browsing_a_registry_that_went_bad_is_a_clear_page(  # type: ignore[no-untyped-def]
    client, viewer, project, server: Server, mode: str, message: str
) -> None:
    server.mode = mode
    registry = Registry.objects.create(name="bad", url=server.url, auth="basic", username="u", password="p")
    registry.projects.set([project])
    client.force_login(viewer)
    for url in (
        reverse("registry:registry", args=[registry.pk]),
        reverse("registry:repository", args=[registry.pk, "library/photon"]),
        reverse("registry:tag", args=[registry.pk, "library/photon", "5.0"]),
    ):
        response = client.get(url)
        assert response.status_code in {404, 502}, url
        assert 'id="registry-error"' in response.content.decode()


def test_a_manifest_of_an_unknown_type_is_shown_as_such_and_escaped(client, viewer, project, server) -> None:  # type: ignore[no-untyped-def]
    server.mode = "unknown-type"
    registry = Registry.objects.create(name="odd", url=server.url)
    registry.projects.set([project])
    client.force_login(viewer)
    response = client.get(reverse("registry:repository", args=[registry.pk, "things/widget"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "unknown: application/vnd.example.widget.v1+json" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    response = client.get(reverse("registry:tag", args=[registry.pk, "things/widget", "1.0"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Not a type the portal knows" in html
    assert "<script>" not in html and "&lt;script&gt;alert(&#x27;annotation&#x27;)" in html


def test_the_url_is_an_origin_only(client, admin) -> None:  # type: ignore[no-untyped-def]
    client.force_login(admin)
    for url, words in [
        ("ftp://registry.example", "http:// or https://"),
        ("http://127.0.0.1:5000/v2/../../x", "no path"),
        ("http://user:pw@127.0.0.1:5000", "not in the URL"),
    ]:
        response = client.post(reverse("registry:add"), form_data(url))
        assert response.status_code == 200
        assert words in response.content.decode()
    assert not Registry.objects.exists()
