"""On PostgreSQL, a trigram index (pg_trgm's GIN) on the inventory's haystack, so that a search's
``LIKE '%word%'`` reads the index rather than every row (words of three characters or more).
The embedded default (SQLite) has no such index and scans, which its scale allows.

Called by the migration that made the table and by the benchmark (whose tables come straight
from the models); a database that refuses the extension keeps a working search, only slower."""

from __future__ import annotations

import logging

from django.db import DatabaseError, transaction
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

log = logging.getLogger(__name__)

INDEX = "engine_object_haystack_trgm"
TABLE = "hosts_engineobject"


def add_trigram_index(schema_editor: BaseDatabaseSchemaEditor) -> bool:
    """Make the index where the database can; whether it did."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return False
    try:
        # A savepoint: a refusal (pg_trgm not installed, no right to create it) must not end
        # the migration's transaction.
        with transaction.atomic(using=connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:
        log.warning(
            "The fleet search has no trigram index (%s): it works, scanning every row. "
            "Have the database's owner run CREATE EXTENSION pg_trgm, then migrate again.",
            exc,
        )
        return False
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} USING gin (haystack gin_trgm_ops)")
    return True


def drop_trigram_index(schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
