"""The API's documentation is a portal page: the portal's header and menus around Swagger UI."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.layout.conftest import World


@pytest.mark.django_db
def test_the_api_docs_have_the_portals_header_and_still_load_swagger_ui(client, world: World) -> None:
    client.force_login(world.admin)
    response = client.get(reverse("api-docs"))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="live-status"' in html and f'href="{reverse("dashboard")}"' in html
    assert '<nav class="breadcrumbs" aria-label="Breadcrumb">' in html
    assert 'id="swagger-ui"' in html and "swagger-ui-bundle.js" in html
    script = client.get(reverse("api-docs") + "?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
    assert reverse("api-schema") in script.content.decode()
