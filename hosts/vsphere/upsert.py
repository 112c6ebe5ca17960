"""Bulk writes of synced rows: insert the new, update the changed, report the missing,
with new rows in one COPY on PostgreSQL (executemany elsewhere) and values prepared
once per column, not once per row."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.db import connections, router
from django.db.models import JSONField, Model
from django.utils import timezone

from hosts.models import VCenter, VirtualMachine


def upsert(
    model: type[Model], vcenter: VCenter, rows: dict[str, dict[str, Any]], fields: list[str]
) -> tuple[dict[str, int], list[int], list[int], list[int]]:
    """Insert new, update changed, report missing. Returns (moref->pk, created, changed, missing)."""
    # _default_manager: each of these models' objects (type[Model] declares no objects).
    existing = {
        row[1]: row
        for row in model._default_manager.filter(vcenter=vcenter)
        .values_list("pk", "moref", *fields)
        .iterator(2000)
    }
    new: list[str] = []
    changed = []
    for moref, values in rows.items():
        old = existing.get(moref)
        if old is None:
            new.append(moref)
        elif any(old[i + 2] != values[f] for i, f in enumerate(fields)):
            changed.append(model(pk=old[0], vcenter=vcenter, moref=moref, **values))
    update_fields = list(fields)
    if model is VirtualMachine:
        now = timezone.now()
        for obj in changed:
            obj.updated = now  # type: ignore[attr-defined]
        update_fields.append("updated")
    _insert(model, vcenter, {moref: rows[moref] for moref in new}, fields)
    model._default_manager.bulk_update(changed, update_fields, batch_size=500)
    ids = {moref: row[0] for moref, row in existing.items()}
    if new:
        # Thousands of new rows (a first sync): reading them all back beats a huge IN list.
        inserted = model._default_manager.filter(vcenter=vcenter)
        if len(new) < 100:
            inserted = inserted.filter(moref__in=new)
        ids.update(inserted.values_list("moref", "pk"))
    missing = [row[0] for moref, row in existing.items() if moref not in rows]
    return ids, [ids[moref] for moref in new], [o.pk for o in changed], missing


def _insert(model: type[Model], vcenter: VCenter, rows: dict[str, dict[str, Any]], fields: list[str]) -> None:
    """INSERT the new rows without a model instance per row (what bulk_create needs, and
    for thousands of VMs it costs more than the insert itself): PostgreSQL takes them in
    one COPY, other databases with executemany."""
    if not rows:
        return
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    by_attname = {f.attname: f for f in meta.concrete_fields}
    # Columns the same on every row, prepared once.
    constant: dict[str, Any] = {"vcenter_id": vcenter.pk}
    if "updated" in by_attname:
        constant["updated"] = timezone.now()
    if "host_id" in by_attname:
        constant["host_id"] = None
    constant = {name: by_attname[name].get_db_prep_save(v, connection) for name, v in constant.items()}
    per_row = ["moref", *fields]
    prepare = [_preparer(by_attname[name], connection) for name in per_row]
    fixed = list(constant.values())
    params = [
        [
            *fixed,
            *(p(v) for p, v in zip(prepare, [moref, *(values[f] for f in fields)], strict=True)),
        ]
        for moref, values in rows.items()
    ]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    columns = []
    for name in [*constant, *per_row]:
        column = by_attname[name].column
        assert column is not None  # a concrete field has a column: that is what concrete means
        columns.append(quote(column))
    names = ", ".join(columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in params:
                    copy.write_row(row)
            return
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * (len(fixed) + len(per_row)))})"  # noqa: S608 - names from the model, values as parameters
        for start in range(0, len(params), 500):
            cursor.executemany(sql, params[start : start + 500])


_PLAIN = (str, int, float, bool, type(None))


def _preparer(model_field: Any, connection: Any) -> Callable[[Any], Any]:
    """A column's value as the database driver takes it. Django's get_db_prep_save per
    value is a third of a 2,000-VM insert; the values read from vSphere are plain
    strings, numbers and flags the drivers take as they are, and JSON is JSON text
    on every backend (and in a PostgreSQL COPY)."""
    if isinstance(model_field, JSONField):
        encoder = model_field.encoder

        def prepare_json(value: Any) -> Any:
            return None if value is None and model_field.null else json.dumps(value, cls=encoder)

        return prepare_json

    def prepare(value: Any) -> Any:
        if isinstance(value, _PLAIN):
            return value
        return model_field.get_db_prep_save(value, connection)

    return prepare
