"""PostgreSQL tells every process when a table it caches changes (lib/table_changes.py).

A statement-level trigger on each table the exchange's snapshot reads (and on the signing keys)
sends ``NOTIFY table_changed, '<table>'``; PostgreSQL delivers it when the transaction commits and
sends one per table and transaction whatever the number of rows. Statement-level triggers fire
for COPY, for an UPDATE or DELETE that matched no row and for TRUNCATE too, so nothing that writes
these tables escapes them. SQLite has no LISTEN: there the migration does nothing and the
per-process cache stays off.
"""

from django.db import migrations

CHANNEL = "table_changed"
FUNCTION = "table_changed_notify"
TRIGGER = "table_changed_notify"
TABLES = (
    "authz_tenant",
    "authz_feature",
    "authz_permission",
    "authz_audience",
    "authz_audience_permissions",
    "authz_role",
    "authz_role_permissions",
    "authz_grant",
    "keys_signingkey",
)


def triggers_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME); RETURN NULL; END $$"
    )
    for table in TABLES:
        schema_editor.execute(f'DROP TRIGGER IF EXISTS {TRIGGER} ON "{table}"')
        schema_editor.execute(
            f'CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{table}"'
            f" FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
        )


def triggers_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f'DROP TRIGGER IF EXISTS {TRIGGER} ON "{table}"')
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [("authz", "0005_grant_provider"), ("keys", "0003_alter_jwksdocument_options")]

    operations = [migrations.RunPython(triggers_create, triggers_drop, elidable=False)]
