"""One encrypted archive holds everything needed to bring a portal back: its data, and
the keys that decrypt the secrets in it (``manage.py backup`` / ``manage.py restore``).

**What is in it.** Every app's rows, as Django's own serialization (dumpdata's JSON, with
times to the microsecond), and PORTAL_ENCRYPTION_KEY's keys. Nothing is read from disk: every key the
portal makes (each host's SSH key, its Docker TLS client key and client CA, the portal
CA, vCenter and registry passwords, credentials) is an EncryptedTextField row, so the
rows and the keys are the whole of it. Left out on purpose: sessions (everyone signs in
again) and content types and permissions, which ``migrate`` makes on the target and
which rows refer to by natural key instead. PORTAL_SECRET_KEY is not needed: API and
kickstart tokens are stored as plain SHA-256 digests, and what it signs (sessions,
password-reset links) is short-lived.

**Why Django serialization, not pg_dump.** One format for both topologies: the
embedded portal's SQLite backup restores into a production PostgreSQL one (the usual
way out of the embedded setup) and back; no pg_dump/pg_restore of a matching major
version is needed on the machine; and rows are loaded through the models, so each
secret is decrypted with the archived keys and re-encrypted with the target's own key
as it is written. The price is that an archive restores only into a portal at the same
migrations (the manifest records them, and restore refuses a mismatch before writing
anything); restore with the version that made it, then upgrade as usual.

**The archive.** ``MAGIC | version | scrypt salt, log2 N, r, p | check | nonce``, then
AES-256-GCM over zlib-compressed JSON, with that whole header as associated data.
scrypt turns the passphrase into 48 bytes: 32 are the AES key, 16 are ``check``, so a
wrong passphrase is told apart from a damaged archive (GCM alone cannot tell the two
apart); any flipped or missing byte after that fails GCM's tag.
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import hmac
import json
import os
import struct
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core import serializers
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.color import no_style
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Model

from portal import fields

MAGIC = b"PHOTON-PORTAL-BACKUP\n"
VERSION = 1
#: scrypt's cost: 2**15 * 8 * 128 bytes = 32 MiB and a fraction of a second per try.
SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 15, 8, 1
_HEADER = struct.Struct(">B16sBBB16s12s")  # version, salt, log2 N, r, p, check, nonce
#: Not backed up: made by migrate on the target (referred to by natural key), or transient.
EXCLUDED = ("contenttypes", "auth.permission", "sessions")
#: A backup holds password hashes and the encryption keys: a short passphrase would undo that.
MIN_PASSPHRASE = 12
PASSPHRASE_ENV = "PORTAL_BACKUP_PASSPHRASE"  # noqa: S105 - the variable's name, not a passphrase


class BackupError(Exception):
    """Refused: the message says why, and nothing was written."""


@dataclass(frozen=True)
class Contents:
    manifest: dict[str, Any]
    keys: list[str]
    database: str


@dataclass(frozen=True)
class Restored:
    counts: dict[str, int]
    reencrypted: bool


# --- the archive --------------------------------------------------------------------


def _derive(passphrase: str, salt: bytes, log2_n: int, r: int, p: int) -> tuple[bytes, bytes]:
    # Bounded: a forged header must not make restore spend gigabytes on scrypt.
    if not (10 <= log2_n <= 20 and 1 <= r <= 16 and 1 <= p <= 4 and 128 * r * 2**log2_n <= 2**28):
        raise BackupError("the archive's header is damaged (impossible key-derivation settings)")
    material = Scrypt(salt=salt, length=48, n=2**log2_n, r=r, p=p).derive(passphrase.encode())
    return material[:32], material[32:]


def seal(contents: Contents, passphrase: str) -> bytes:
    plaintext = zlib.compress(
        json.dumps(
            {"manifest": contents.manifest, "encryption_keys": contents.keys, "database": contents.database}
        ).encode(),
        level=6,
    )
    salt, nonce = os.urandom(16), os.urandom(12)
    key, check = _derive(passphrase, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
    header = MAGIC + _HEADER.pack(VERSION, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, check, nonce)
    return header + AESGCM(key).encrypt(nonce, plaintext, header)


def unseal(archive: bytes, passphrase: str) -> Contents:
    if not archive.startswith(MAGIC):
        raise BackupError("this is not a Photon Portal backup (or its first bytes are damaged)")
    header_end = len(MAGIC) + _HEADER.size
    if len(archive) < header_end + 16:
        raise BackupError("the archive is truncated: it ends inside its header")
    version, salt, log2_n, r, p, check, nonce = _HEADER.unpack(archive[len(MAGIC) : header_end])
    if version != VERSION:
        raise BackupError(f"the archive is format {version}; this portal reads format {VERSION}")
    key, expected = _derive(passphrase, salt, log2_n, r, p)
    if not hmac.compare_digest(check, expected):
        raise BackupError("wrong passphrase for this archive")
    try:
        plaintext = AESGCM(key).decrypt(nonce, archive[header_end:], archive[:header_end])
        document = json.loads(zlib.decompress(plaintext))
        contents = Contents(document["manifest"], list(document["encryption_keys"]), document["database"])
    except InvalidTag:
        raise BackupError("the archive is corrupted or truncated (its integrity check fails)") from None
    except (zlib.error, ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"the archive's contents are unreadable: {exc}") from None
    if not contents.keys:
        raise BackupError("the archive holds no encryption key: its secrets could not be read")
    return contents


# --- passphrase and files -------------------------------------------------------------


def read_passphrase(path: str | None, *, confirm: bool) -> str:
    """From a file (first line), else PORTAL_BACKUP_PASSPHRASE, else asked for at a terminal.
    Never an argument: the command line is visible to everyone in ``ps``."""
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BackupError(f"cannot read the passphrase file {path}: {exc}") from None
        passphrase = text.splitlines()[0] if text else ""
    elif os.environ.get(PASSPHRASE_ENV):
        passphrase = os.environ[PASSPHRASE_ENV]
    else:
        if not sys.stdin.isatty():
            raise BackupError(
                f"no passphrase: give --passphrase-file, set {PASSPHRASE_ENV}, or run at a terminal"
            )
        passphrase = getpass.getpass("Backup passphrase: ")
        if confirm and getpass.getpass("Again: ") != passphrase:
            raise BackupError("the two passphrases differ")
    if not passphrase:
        raise BackupError("the passphrase is empty")
    return passphrase


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read; refuse to replace one (O_EXCL)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(f"{path} exists already; choose another name or move it away") from None
    except OSError as exc:
        raise BackupError(f"cannot create {path}: {exc}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise BackupError(f"cannot write {path}: {exc}") from None


# --- the database -----------------------------------------------------------------------


class _ExactEncoder(DjangoJSONEncoder):
    """Times to the microsecond (Django's encoder keeps milliseconds): the audit trail's
    moments come back as they were written."""

    def default(self, o: Any) -> Any:
        if isinstance(o, datetime.datetime | datetime.time):
            return o.isoformat()
        return super().default(o)


def _every_row(using: str) -> Iterator[Model]:
    """Every backed-up model's rows, by id, models in an order that loads (natural-key
    targets first), through the base manager: whatever a default manager hides too."""
    app_list = [(config, None) for config in apps.get_app_configs() if config.label not in EXCLUDED]
    connection = connections[using]
    for model in serializers.sort_dependencies(app_list, allow_cycles=True):
        if (
            model._meta.label_lower in EXCLUDED
            or model._meta.proxy
            or not model._meta.can_migrate(connection)
        ):
            continue
        yield from model._base_manager.using(using).order_by(model._meta.pk.name).iterator()


def _leaf_migrations(using: str) -> list[list[str]]:
    loader = MigrationLoader(connections[using], ignore_no_migrations=True)
    return sorted([app, name] for app, name in loader.graph.leaf_nodes())


def take(using: str = DEFAULT_DB_ALIAS) -> Contents:
    """The database's rows and the keys for their secrets, read in one snapshot."""
    if not settings.ENCRYPTION_KEYS:
        raise BackupError("PORTAL_ENCRYPTION_KEY is not set: the backup would hold secrets nobody can read")
    connection = connections[using]
    applied = set(MigrationRecorder(connection).applied_migrations())
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    pending = [f"{app}.{name}" for app, name in loader.graph.leaf_nodes() if (app, name) not in applied]
    if pending:
        raise BackupError(f"migrations are not applied ({', '.join(pending)}): run manage.py migrate first")
    out = StringIO()
    # Inside a caller's transaction (a test, a larger job) the snapshot is that one's.
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=using):
        if connection.vendor == "postgresql" and outermost:
            # One snapshot for every table, without blocking writers.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            serializers.serialize(
                "json",
                _every_row(using),
                stream=out,
                use_natural_foreign_keys=True,
                cls=_ExactEncoder,
            )
        except ImproperlyConfigured as exc:
            raise BackupError(str(exc)) from None
    manifest = {
        "format": VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "vendor": connection.vendor,
        "migrations": _leaf_migrations(using),
    }
    return Contents(manifest, list(settings.ENCRYPTION_KEYS), out.getvalue())


def rows_present(using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Tables that hold rows (content types and permissions aside: migrate makes those)."""
    connection = connections[using]
    existing = set(connection.introspection.table_names())
    found = []
    for model in apps.get_models(include_auto_created=True):
        if model in (ContentType, Permission) or model._meta.db_table not in existing:
            continue
        if model._base_manager.using(using).exists():
            found.append(model._meta.db_table)
    return sorted(found)


def check_restorable(contents: Contents, using: str = DEFAULT_DB_ALIAS) -> None:
    """Everything restore refuses for, checked before anything is written."""
    ours = _leaf_migrations(using)
    theirs = contents.manifest.get("migrations")
    if theirs != ours:
        mine = {tuple(m) for m in ours}
        other = {tuple(m) for m in theirs or []}
        diff = ", ".join(f"{a}.{n}" for a, n in sorted(other ^ mine))
        raise BackupError(
            "the archive was made by a portal at other migrations than this one "
            f"(differing: {diff}); restore with the portal version that made it, then upgrade"
        )
    busy = rows_present(using)
    if busy:
        shown = ", ".join(busy[:5]) + (" …" if len(busy) > 5 else "")
        raise BackupError(
            f"the database is not empty ({len(busy)} table(s) hold rows: {shown}); "
            "restore only into an empty database, nothing was changed"
        )


@contextlib.contextmanager
def _key_ring(keys: list[str]) -> Iterator[None]:
    old = settings.ENCRYPTION_KEYS
    settings.ENCRYPTION_KEYS = keys
    fields.reset_keys()
    try:
        yield
    finally:
        settings.ENCRYPTION_KEYS = old
        fields.reset_keys()


def load(contents: Contents, using: str = DEFAULT_DB_ALIAS) -> Restored:
    """Migrate the (checked empty) database and write the archive's rows, all or nothing.

    Secrets are read with the archived keys and written with this portal's first key
    when it has one (so they need no key from the archive afterwards), else with the
    archived first key."""
    own = list(settings.ENCRYPTION_KEYS)
    ring = own + [key for key in contents.keys if key not in own]
    call_command("migrate", database=using, interactive=False, verbosity=0)
    ContentType.objects.clear_cache()
    connection = connections[using]
    counts: Counter[str] = Counter()
    seen: set[type[Model]] = set()
    try:
        with _key_ring(ring), transaction.atomic(using=using):
            check_restorable(contents, using)  # again: nobody wrote in the meantime
            with connection.constraint_checks_disabled():
                deferred = []
                for item in serializers.deserialize(
                    "json", contents.database, using=using, handle_forward_references=True
                ):
                    item.save(using=using)
                    if item.deferred_fields:
                        deferred.append(item)
                    model = type(item.object)
                    seen.add(model)
                    counts[model._meta.label_lower] += 1
                for item in deferred:
                    item.save_deferred_fields(using=using)
            connection.check_constraints(table_names=[m._meta.db_table for m in seen])
            # Rows came with their ids: the next id each table hands out follows them.
            statements = connection.ops.sequence_reset_sql(no_style(), list(seen))
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
    except ImproperlyConfigured as exc:
        raise BackupError(f"a secret in the archive does not decrypt with its keys: {exc}") from None
    except (serializers.base.DeserializationError, DatabaseError) as exc:
        raise BackupError(f"the archive's rows do not load: {exc}") from None
    return Restored(dict(sorted(counts.items())), reencrypted=bool(own))
