"""Every page below a section's index says where it sits: breadcrumbs above its heading,
the first step a link to the section, the last the page itself."""

from __future__ import annotations

import re

import pytest
from django.template import engines
from django.urls import reverse

from tests.layout.conftest import World

NAV = re.compile(r'<nav class="breadcrumbs" aria-label="Breadcrumb">(.*?)</nav>', re.S)
LINK = re.compile(r'<a href="([^"]*)">([^<]*)</a>')


def below_sections(w: World) -> list[tuple[str, str, str]]:
    """(page, its section's index, the page's own last step)."""
    hosts, vsphere = reverse("hosts:index"), reverse("hosts:vsphere")
    provision, registries = reverse("hosts:provision"), reverse("registry:index")
    return [
        (reverse("hosts:host", args=[w.host.pk]), hosts, "photon-1"),
        (reverse("hosts:container", args=[w.host.pk, "0123456789ab"]), hosts, ""),
        (reverse("hosts:deploy", args=[w.host.pk]), hosts, "Deploy a container"),
        (reverse("hosts:edit", args=[w.host.pk]), hosts, "Edit"),
        (reverse("hosts:remove", args=[w.host.pk]), hosts, "Remove"),
        (reverse("hosts:add"), hosts, "Add a host"),
        (reverse("hosts:vm", args=[w.vm.pk]), vsphere, "vm-photon-1"),
        (reverse("hosts:vcenters"), vsphere, "vCenters"),
        (reverse("hosts:vcenter_add"), vsphere, "Add"),
        (reverse("hosts:change", args=[w.change.pk]), reverse("hosts:changes"), str(w.change)),
        (reverse("hosts:profile_new"), reverse("hosts:changes"), "New profile"),
        (reverse("hosts:provision_request", args=[w.request.pk]), provision, "web-{n}"),
        (reverse("hosts:provision_new"), provision, "New from a template"),
        (reverse("hosts:provision_quotas"), provision, "Quotas"),
        (reverse("hosts:provision_quota", args=[w.project.pk]), provision, "fleet"),
        (reverse("hosts:provision_vm_cancel", args=[w.pvm.pk]), provision, "Cancel web-1"),
        (reverse("approvals"), reverse("work"), "Approvals"),
        (reverse("project-detail", args=[w.project.pk]), reverse("projects"), "fleet"),
        (reverse("project-create"), reverse("projects"), "New project"),
        (reverse("registry:add"), registries, ""),
        (reverse("registry:edit", args=[w.registry.pk]), registries, ""),
        (reverse("registry:registry", args=[w.registry.pk]), registries, ""),
        (reverse("registry:repository", args=[w.registry.pk, "library/busybox"]), registries, ""),
        (reverse("registry:tag", args=[w.registry.pk, "library/busybox", "1.36"]), registries, ""),
    ]


@pytest.mark.django_db
def test_every_page_below_a_section_has_breadcrumbs_from_the_section(client, world: World) -> None:
    client.force_login(world.admin)
    for url, section, last in below_sections(world):
        response = client.get(url)
        # 502: a registry page saying the registry does not answer (its own page, crumbs too).
        assert response.status_code in (200, 502), url
        html = response.content.decode()
        found = NAV.search(html)
        assert found, f"{url} has no breadcrumbs"
        assert html.index(found[0]) < html.index("<h2"), f"{url}: the breadcrumbs are not above the heading"
        assert LINK.findall(found[1])[0][0] == section, f"{url}: the first step is not its section"
        current = re.findall(r'aria-current="page">([^<]*)</li>', found[1])
        if last:
            assert current == [last], f"{url}: the last step is {current}, not the page"


@pytest.mark.django_db
def test_a_section_index_has_no_empty_breadcrumbs(client, world: World) -> None:
    client.force_login(world.admin)
    html = client.get(reverse("hosts:index")).content.decode()
    assert 'class="breadcrumbs"' not in html


def test_a_name_from_outside_is_escaped_in_the_breadcrumbs() -> None:
    page = engines["django"].from_string("{% filter breadcrumbs %}{% crumb name %}{% endfilter %}")
    assert "&lt;b&gt;" in page.render({"name": "<b>"})
