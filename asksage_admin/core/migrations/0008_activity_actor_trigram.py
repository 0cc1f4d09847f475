"""Activity Logs filtered by actor email (icontains): a trigram index on PostgreSQL.

Django's icontains is UPPER(actor_email::text) LIKE UPPER('%...%'); without this index the
filter reads every row of the enterprise's log (250-500 ms on 100,000 rows). pg_trgm is a
trusted extension (PostgreSQL 13+): the database owner may create it. SQLite keeps no index.
"""

from django.db import migrations

INDEX = "activity_actor_trgm_idx"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON core_activitylog"
        " USING gin (upper(actor_email::text) gin_trgm_ops)"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("core", "0007_usage_request_actions")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
