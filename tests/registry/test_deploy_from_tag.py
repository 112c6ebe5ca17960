"""From a tag page to a host's deploy form, with the image handed over (issue 6, part 5)."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

import pytest
from django.urls import reverse

from hosts.models import Host, HostStatus
from portal.models import Role

pytestmark = pytest.mark.django_db


def test_a_provisioner_deploys_a_tag_to_a_host_of_the_registrys_project(
    client, make_user, lab_registry, project, other_project, lab_engines
) -> None:
    registry = lab_registry("anonymous")
    engine = next(e for e in lab_engines if not e["tls"])
    ours = Host.objects.create(project=project, name="photon-01", docker_url=engine["url"], insecure=True)
    theirs = Host.objects.create(
        project=other_project, name="photon-99", docker_url=engine["url"], insecure=True
    )
    client.force_login(make_user("prov", project=project, role=Role.PROVISIONER))

    page = client.get(reverse("registry:tag", args=[registry.pk, "library/photon", "5.0"])).content.decode()
    assert 'id="deploy-form"' in page
    assert f'value="{ours.pk}"' in page and f'value="{theirs.pk}"' not in page
    image = f"{registry.url.split('://', 1)[1]}/library/photon:5.0"

    chosen = client.get(reverse("hosts:deploy_to"), {"host": ours.pk, "image": image})
    assert chosen.status_code == 302
    assert chosen["Location"] == f"{reverse('hosts:deploy', args=[ours.pk])}?image={quote(image, safe='')}"
    form = client.get(chosen["Location"]).content.decode()
    assert f'value="{image}"' in form

    # Another project's host, or no host at all: not found, as if it did not exist.
    assert client.get(reverse("hosts:deploy_to"), {"host": theirs.pk, "image": image}).status_code == 404
    assert client.get(reverse("hosts:deploy_to"), {"host": "x"}).status_code == 404


def test_the_host_picker_marks_an_off_host_and_offers_it_not(
    client, make_user, lab_registry, project, lab_engines
) -> None:
    registry = lab_registry("anonymous")
    engine = next(e for e in lab_engines if not e["tls"])
    on = Host.objects.create(project=project, name="photon-01", docker_url=engine["url"], insecure=True)
    off = Host.objects.create(
        project=project, name="photon-02", docker_url=engine["url"], insecure=True, status=HostStatus.OFF
    )
    client.force_login(make_user("prov", project=project, role=Role.PROVISIONER))
    page = client.get(reverse("registry:tag", args=[registry.pk, "library/photon", "5.0"])).content.decode()
    assert f'<option value="{on.pk}">' in page
    assert re.search(
        rf'<option value="{off.pk}" disabled title="Off: [^"]+">[^<]*photon-02 \(off\)</option>', page
    )


def test_a_viewer_gets_no_deploy_form(client, make_user, lab_registry, project, lab_engines) -> None:
    registry = lab_registry("anonymous")
    engine = next(e for e in lab_engines if not e["tls"])
    Host.objects.create(project=project, name="photon-01", docker_url=engine["url"], insecure=True)
    client.force_login(make_user("vera", project=project, role=Role.VIEWER))
    page = client.get(reverse("registry:tag", args=[registry.pk, "library/photon", "5.0"])).content.decode()
    assert "docker pull" in page and 'id="deploy-form"' not in page


def test_a_project_admin_starts_an_application_template_from_a_tag(
    client, make_user, lab_registry, project
) -> None:
    registry = lab_registry("anonymous")
    url = reverse("registry:tag", args=[registry.pk, "library/photon", "5.0"])
    client.force_login(make_user("prov", project=project, role=Role.PROVISIONER))
    assert 'id="template-from-image"' not in client.get(url).content.decode()  # templates are kept by admins
    client.force_login(make_user("pa", project=project, role=Role.PROJECT_ADMIN))
    page = client.get(url).content.decode()
    link = re.search(r'id="template-from-image" href="([^"]+)"', page)
    assert link is not None
    image = f"{registry.url.split('://', 1)[1]}/library/photon:5.0"
    form = client.get(html.unescape(link[1])).content.decode()
    assert f"image: {image}" in form
