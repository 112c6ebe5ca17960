"""A throwaway database for a benchmark: the current models (no migrations), dropped afterwards."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A new database (an SQLite file, or bench_PID beside DATABASE_URL's); yields its name."""
    tmp = tempfile.TemporaryDirectory(prefix="bench-")
    if not os.environ.get("DATABASE_URL"):
        os.environ["PORTAL_SQLITE_PATH"] = os.path.join(tmp.name, "bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django
    from django.apps import apps
    from django.conf import settings

    django.setup()
    # Every app's tables straight from its models: benchmarks must not depend on migration files
    # that are being regenerated.
    settings.MIGRATION_MODULES = {app.label: None for app in apps.get_app_configs()}
    from django.db import connection

    if connection.vendor == "sqlite":
        # A file, not SQLite's in-memory test default: a daphne under measurement shares it.
        connection.settings_dict.setdefault("TEST", {})["NAME"] = os.path.join(tmp.name, "test.sqlite3")
    else:
        # A name of its own: test_<DATABASE_URL's name> is the one pytest uses, and
        # autoclobber would drop a suite's database from under it.
        connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_{os.getpid()}"
    old_name = connection.settings_dict["NAME"]
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield str(name)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        tmp.cleanup()
