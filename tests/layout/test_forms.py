"""Every form the portal renders has Clarity's controls, none the browser's bare ones; a
group of checkboxes is a fieldset with a legend, not a label for nothing."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from typing import Any

import pytest
from django import forms
from django.urls import reverse

import hosts
import portal
import registry
from hosts.applications.compose import Variable
from portal.forms import clarity_class
from tests.layout.conftest import World

#: Extra keyword arguments some forms take (who asks, what quota).
KWARGS: dict[str, dict[str, Any]] = {
    "QuotaForm": {"quota": None},
    "PatchChangeForm": {"host_choices": [("1", "photon-1 (not checked yet)")]},
    # A secret variable (a password box) and a plain one.
    "AppDeployForm": {
        "hosts": ["photon-1"],
        "variables": [Variable("DB_PASSWORD", None, True, ""), Variable("TAG", "1.0", False, "")],
    },
}


def form_classes() -> list[type[forms.BaseForm]]:
    """Every form class defined in portal, hosts and registry, but the admin's (its own look)."""
    found: dict[str, type[forms.BaseForm]] = {}
    for package in (portal, hosts, registry):
        for module_info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".migrations" in module_info.name or module_info.name.endswith((".admin", ".asgi", ".celery")):
                continue
            module = importlib.import_module(module_info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if (
                    issubclass(cls, forms.BaseForm)
                    and cls.__module__ == module.__name__
                    and cls.__module__.split(".")[0] in {"portal", "hosts", "registry", "alerts", "directory"}
                    and getattr(getattr(cls, "_meta", None), "model", True) is not None
                    and not inspect.isabstract(cls)
                    and cls.__name__ != "ClarityForm"
                ):
                    found[f"{cls.__module__}.{cls.__name__}"] = cls
    return [found[name] for name in sorted(found)]


def test_the_scan_finds_the_forms() -> None:
    names = {cls.__name__ for cls in form_classes()}
    assert {"HostForm", "DeployForm", "RegistryForm", "ProfileForm", "ProvisionForm", "TokenForm"} <= names


@pytest.mark.django_db
@pytest.mark.parametrize("form_class", form_classes(), ids=lambda cls: cls.__name__)
def test_every_visible_control_of_every_form_has_its_clarity_class(form_class, world: World) -> None:
    kwargs = KWARGS.get(form_class.__name__, {})
    if "user" in inspect.signature(form_class.__init__).parameters:
        kwargs = {**kwargs, "user": world.admin}
    form = form_class(**kwargs)
    for field in form:
        if field.is_hidden:
            continue
        wanted = clarity_class(field.field.widget)
        assert wanted, f"{form_class.__name__}.{field.name}: no Clarity class for {field.field.widget!r}"
        html = str(field)
        classes = re.findall(r'<(?:input|select|textarea)\b[^>]*class="([^"]*)"', html)
        controls = re.findall(r"<(?:input|select|textarea)\b", html)
        assert len(classes) == len(controls) and all(wanted in c.split() for c in classes), (
            f"{form_class.__name__}.{field.name} renders {html[:200]}"
        )


@pytest.mark.django_db
def test_a_group_of_checkboxes_is_a_fieldset_with_its_legend(client, world: World) -> None:
    client.force_login(world.admin)
    for url in (
        reverse("hosts:provision_quota", args=[world.project.pk]),
        reverse("registry:edit", args=[world.registry.pk]),
        reverse("hosts:profile_new"),
        reverse("hosts:add"),
    ):
        html = client.get(url).content.decode()
        assert 'for=""' not in html, url
    html = client.get(reverse("hosts:provision_quota", args=[world.project.pk])).content.decode()
    assert re.search(r'<fieldset class="clr-form-control[^"]*">\s*<legend class="clr-control-label">', html)
