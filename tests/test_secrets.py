"""Secrets are encrypted at rest, never rendered back, and survive key rotation."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from portal import fields
from portal.models import Credential

pytestmark = pytest.mark.django_db

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-material\n-----END OPENSSH PRIVATE KEY-----"


def raw_secret(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM portal_credential WHERE id = %s", [pk])
        return cursor.fetchone()[0]


@pytest.fixture(autouse=True)
def _fresh_keys(settings):  # type: ignore[no-untyped-def]
    fields.reset_keys()
    yield
    fields.reset_keys()


def test_stored_encrypted_and_read_back(settings) -> None:
    cred = Credential.objects.create(name="root@web", kind="ssh_key", secret=KEY)
    stored = raw_secret(cred.pk)
    assert stored.startswith("fernet:") and "secret-material" not in stored
    assert Credential.objects.get(pk=cred.pk).secret == KEY


def test_never_rendered_back_by_the_admin(admin_client) -> None:
    cred = Credential.objects.create(name="root@web", kind="ssh_key", secret=KEY)
    page = admin_client.get(f"/admin/portal/credential/{cred.pk}/change/").content.decode()
    assert "secret-material" not in page
    assert "fernet:" not in page
    # Saving the form with the secret left empty keeps the stored one.
    response = admin_client.post(
        f"/admin/portal/credential/{cred.pk}/change/",
        {
            "name": "root@web2",
            "kind": "ssh_key",
            "username": "root",
            "secret": "",
            "public": "",
            "project": "",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    cred.refresh_from_db()
    assert cred.name == "root@web2" and cred.secret == KEY


def test_repr_hides_the_value() -> None:
    cred = Credential.objects.create(name="x", kind="password", secret="hunter2")
    cred = Credential.objects.get(pk=cred.pk)
    assert "hunter2" not in repr(cred.secret)
    assert "hunter2" not in repr(cred.__dict__)


def test_rotation_keeps_old_values_readable_and_rewrites_them(settings) -> None:
    old = settings.ENCRYPTION_KEYS[0]
    cred = Credential.objects.create(name="x", kind="password", secret="hunter2")
    before = raw_secret(cred.pk)
    new = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new, old]
    fields.reset_keys()
    assert Credential.objects.get(pk=cred.pk).secret == "hunter2"
    call_command("rotate_secrets", stdout=open("/dev/null", "w"))  # noqa: SIM115
    after = raw_secret(cred.pk)
    assert after != before
    settings.ENCRYPTION_KEYS = [new]
    fields.reset_keys()
    assert Credential.objects.get(pk=cred.pk).secret == "hunter2"


def test_a_wrong_key_is_a_clear_error_not_garbage(settings) -> None:
    from django.core.exceptions import ImproperlyConfigured

    cred = Credential.objects.create(name="x", kind="password", secret="hunter2")
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    fields.reset_keys()
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        Credential.objects.get(pk=cred.pk)


def test_a_new_credential_needs_its_secret(admin_client) -> None:
    response = admin_client.post(
        "/admin/portal/credential/add/",
        {"name": "empty", "kind": "password", "username": "u", "secret": "", "public": "", "project": ""},
    )
    assert response.status_code == 200
    assert not Credential.objects.filter(name="empty").exists()
