"""Vacuum the usage roll-ups after 1 % of their rows changed, not PostgreSQL's default 20 %.

Every recorded event updates its user's month, day and lifetime rows. The Users sorts and
the Dashboard read those rows through indexes that hold the token columns, so no update is
HOT: each leaves a dead index entry, and index-only reads need pages marked all-visible by
a vacuum. At the default threshold, a 10,000-user enterprise's current month carried
550,000 dead entries after a burst of 640,000 events and its over-cap count took 40 ms
instead of 5. PostgreSQL only; on SQLite this does nothing.
"""

from django.db import migrations

from asksage_admin.core.pg import postgres_sql

TABLES = [
    "metrics_monthlyusage",
    "metrics_dailyusage",
    "metrics_usagetotal",
    "metrics_enterprisemonthlyusage",
]
SETTINGS = "autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02"
RESET = "autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor"


class Migration(migrations.Migration):
    dependencies = [("metrics", "0011_daily_usage_covering_index")]

    operations = [
        postgres_sql(
            "".join(f"ALTER TABLE {table} SET ({SETTINGS});\n" for table in TABLES),
            "".join(f"ALTER TABLE {table} RESET ({RESET});\n" for table in TABLES),
        )
    ]
