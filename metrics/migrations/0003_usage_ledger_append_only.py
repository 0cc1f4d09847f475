"""The usage ledger refuses UPDATE and DELETE in PostgreSQL (corrections are new events)."""

from django.db import migrations

from asksage_admin.core.pg import append_only_sql, postgres_sql

CREATE, DROP = append_only_sql("metrics_usageevent", truncate=False)


class Migration(migrations.Migration):

    dependencies = [
        ("metrics", "0002_integration"),
        ("core", "0003_activity_chain"),
    ]

    operations = [postgres_sql(CREATE, DROP)]
