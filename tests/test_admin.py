"""The Django admin covers every model, and shows each list page without error."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin

#: Models deliberately left out of the admin, and why.
NOT_IN_ADMIN = {
    "hosts.filebackup": "original file contents, secret at rest; seen through a change's page",
    "hosts.certificateauthority": "the portal's CA and its keys; managed by the portal itself",
    "hosts.changerun": "shown inline on its change",
    "hosts.patchrun": "shown inline on its patch change",
    "hosts.datacenter": "vSphere inventory, seen on the vSphere page",
    "hosts.cluster": "vSphere inventory, seen on the vSphere page",
    "hosts.esxhost": "vSphere inventory, seen on the vSphere page",
    "hosts.datastore": "vSphere inventory, seen on the vSphere page",
    "portal.apitoken": "personal; made and revoked by their owner under Account",
    "hosts.portalsshkey": "the portal's own SSH key; its private half is secret and made by the portal",
    "hosts.provisionedvm": "shown inline on its provisioning request",
    "registry.deleteprefix": "edited inline on its registry",
    "hosts.deploy": "a deploy and how it went (its environment is secret until its task has run)",
    "hosts.projecthostcounts": "a counter kept from the hosts themselves; an edit would only make it wrong",
    "hosts.templateversion": "shown inline on its template",
    "hosts.applicationplacement": "shown inline on its application",
    "hosts.engineobject": "a copy of what the engines hold, kept by their watcher; found by the fleet search",
}


def portal_models() -> list[str]:
    return [
        m._meta.label_lower
        for app in ("portal", "hosts", "registry")
        for m in apps.get_app_config(app).get_models()
    ]


def test_every_model_is_in_the_admin_or_left_out_for_a_reason() -> None:
    registered = {m._meta.label_lower for m in admin.site._registry}
    missing = [label for label in portal_models() if label not in registered and label not in NOT_IN_ADMIN]
    assert missing == []


@pytest.mark.django_db
def test_every_admin_list_page_answers(admin_client) -> None:
    for model in admin.site._registry:
        if model._meta.app_label in {"portal", "hosts", "registry"}:
            url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
            assert admin_client.get(url).status_code == 200, url
