"""On PostgreSQL the audit table is append-only in the database itself, not only in the
ORM: a trigger refuses every UPDATE, and every DELETE except inside a transaction that
set ``portal.audit_prune`` locally, which only AuditQuerySet.prune (retention) does.
SQLite has no such setting; there the ORM's refusal is what holds."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION portal_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('portal.audit_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: % of audit entries is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Entries leave only by retention (manage.py prune_audit).';
END;
$$;
CREATE TRIGGER portal_auditentry_append_only
    BEFORE UPDATE OR DELETE ON portal_auditentry
    FOR EACH ROW EXECUTE FUNCTION portal_audit_append_only();
"""

REVERSE = """
DROP TRIGGER IF EXISTS portal_auditentry_append_only ON portal_auditentry;
DROP FUNCTION IF EXISTS portal_audit_append_only();
"""


def _run(sql: str):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)  # None: the SQL has a literal %

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0002_apitoken"),
    ]

    operations = [
        migrations.RunPython(_run(FORWARD), _run(REVERSE), elidable=False),
    ]
