"""The lab provider's world, made at each start from ``seed.json`` (written by
tests.lab.oidc.up): its tables, the portal's client and the people with their groups."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management import call_command
from oauth2_provider.models import get_application_model


def seed(path: Path) -> None:
    data: dict[str, Any] = json.loads(path.read_text())
    call_command("migrate", verbosity=0, interactive=False)
    Application = get_application_model()
    Application.objects.update_or_create(
        client_id=data["client_id"],
        defaults={
            "name": "Photon Portal",
            "client_secret": data["client_secret"],  # hashed by the model on save
            "client_type": Application.CLIENT_CONFIDENTIAL,
            "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
            "redirect_uris": " ".join(data["redirect_uris"]),
            "algorithm": Application.RS256_ALGORITHM,
            "skip_authorization": True,  # no consent page: the lab's people agree
        },
    )
    for username, person in data["users"].items():
        user, _ = User.objects.get_or_create(username=username)
        user.first_name, user.last_name = person["name"]
        user.email = person["email"]
        user.set_password(person["password"])
        user.save()
        user.groups.set([Group.objects.get_or_create(name=name)[0] for name in person["groups"]])
