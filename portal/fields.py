"""One field type for every secret the portal keeps (SSH keys, passwords, TLS keys).

Values are encrypted with Fernet keys from PORTAL_ENCRYPTION_KEY (comma separated,
newest first; MultiFernet decrypts with any of them, so a new key can be put in
front and ``manage.py rotate_secrets`` re-encrypts everything with it). A secret
is never rendered back: its form widget is always empty, and ``repr`` hides it so
it does not end up in logs or error pages.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django import forms
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

#: Ciphertext is stored with this prefix, so a plaintext value never passes for one.
PREFIX = "fernet:"


class Secret(str):
    """A decrypted secret: usable as a string, but hidden from repr (logs, tracebacks)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('********')"


@cache
def _keys() -> MultiFernet:
    raw = settings.ENCRYPTION_KEYS
    if not raw:
        raise ImproperlyConfigured("PORTAL_ENCRYPTION_KEY is not set: the portal cannot keep secrets")
    try:
        return MultiFernet([Fernet(key.encode()) for key in raw])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "PORTAL_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64 bytes), comma separated"
        ) from exc


def reset_keys() -> None:
    """Forget the cached keys (settings changed: tests, rotation)."""
    _keys.cache_clear()


def encrypt(plaintext: str) -> str:
    return PREFIX + _keys().encrypt(plaintext.encode()).decode()


def decrypt(stored: str) -> Secret:
    if not stored.startswith(PREFIX):
        raise ValueError("not an encrypted value")
    try:
        return Secret(_keys().decrypt(stored[len(PREFIX) :].encode()).decode())
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "a stored secret cannot be decrypted with any key in PORTAL_ENCRYPTION_KEY"
        ) from exc


class SecretInput(forms.PasswordInput):
    """Never shows the stored value; left empty on edit it keeps what is stored."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs={"autocomplete": "new-password", **(attrs or {})}, render_value=False)


class SecretTextarea(forms.Textarea):
    """For multi-line secrets (private keys, PEM): empty on every render."""

    def format_value(self, value: Any) -> None:
        return None


class SecretFormField(forms.CharField):
    widget = SecretInput

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)
        if self.help_text == "":
            self.help_text = "Stored encrypted and never shown again. Leave empty to keep the stored value."

    def has_changed(self, initial: Any, data: Any) -> bool:
        return bool(data)


class EncryptedTextField(models.TextField):
    """A TextField whose value is encrypted at rest and never rendered into a form.

    ``multiline=True`` gives a (always empty) textarea, for keys and certificates.
    """

    def __init__(self, *args: Any, multiline: bool = False, **kwargs: Any) -> None:
        self.multiline = multiline
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.multiline:
            kwargs["multiline"] = True
        return name, path, args, kwargs

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Secret | None:
        if value is None or value == "":
            return None if value is None else Secret("")
        return decrypt(value)

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, Secret):
            return value
        if isinstance(value, str) and value.startswith(PREFIX):
            return decrypt(value)
        return Secret(value)

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(str(value))

    def value_to_string(self, obj: models.Model) -> str:
        # Fixtures and dumpdata get the ciphertext, never the plaintext.
        value = self.value_from_object(obj)
        return "" if value is None else encrypt(str(value))

    def formfield(self, **kwargs: Any) -> forms.Field | None:
        kwargs.setdefault("form_class", SecretFormField)
        # Unconditionally: the admin (and anyone's formfield_overrides) would put a
        # plain textarea here, which renders the value.
        kwargs["widget"] = SecretTextarea if self.multiline else SecretInput
        kwargs.setdefault("required", not self.blank)
        return super().formfield(**kwargs)

    def save_form_data(self, instance: models.Model, data: Any) -> None:
        # An empty secret field in a form means "keep what is stored".
        if data:
            super().save_form_data(instance, data)


class SecretAwareModelForm(forms.ModelForm):
    """The base for every form that edits a model with secrets: when a secret is
    already stored, leaving its (always empty) input empty keeps it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if isinstance(field, SecretFormField) and self.instance.pk and getattr(self.instance, name, None):
                field.required = False
