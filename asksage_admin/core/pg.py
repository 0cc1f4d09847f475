"""PostgreSQL-only schema pieces (triggers) for migrations that must still run on SQLite.

Why plain migrations and not django-pgtrigger: the guards are a handful of PL/pgSQL
functions written once and read in one place; a dependency that generates them would add
a package, a model-Meta DSL and a `pgtrigger` install step to guard four tables. On SQLite
these operations do nothing and the service rules (tokens.pool, metrics.ingest) still hold.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

# The SQLSTATE and constraint names the guards raise with; errors.guard_refusal reads them.
APPEND_ONLY = "append_only"
POOL_WITHIN_PURCHASE = "pool_within_purchase"
PAID_USER_MINIMUM = "paid_user_minimum"


def postgres_sql(sql: str, reverse_sql: str = "") -> migrations.RunPython:
    """A RunPython that runs `sql` on PostgreSQL only (and `reverse_sql` when unapplied)."""

    def forward(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            _run(schema_editor, sql)

    def backward(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "postgresql" and reverse_sql:
            _run(schema_editor, reverse_sql)

    return migrations.RunPython(forward, backward, elidable=False)


def _run(schema_editor: BaseDatabaseSchemaEditor, sql: str) -> None:
    # No parameters, so "%" in PL/pgSQL (RAISE's placeholders) is not a driver placeholder.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(sql)


REFUSE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION asksage_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is refused.', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation', CONSTRAINT = '{APPEND_ONLY}',
              TABLE = TG_TABLE_NAME;
END;
$$;
"""


def append_only_sql(table: str, *, truncate: bool) -> tuple[str, str]:
    """(create, drop) SQL for triggers refusing UPDATE and DELETE (and TRUNCATE) on `table`."""
    create = (
        REFUSE_FUNCTION
        + f"""
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION asksage_refuse_change();
"""
    )
    drop = f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};"
    if truncate:
        create += f"""
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION asksage_refuse_change();
"""
        drop += f" DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};"
    return create, drop
