"""Hash-chain the activity log and make it append-only in PostgreSQL.

Existing rows are chained in id order; then UPDATE, DELETE and TRUNCATE on the log are
refused by triggers (PostgreSQL only; on SQLite the model's AppendOnly guards remain).
"""

import django.utils.timezone
from django.db import migrations, models

from asksage_admin.core.chain import GENESIS, RECORD_FIELDS, canonical_record, chain_hash
from asksage_admin.core.pg import append_only_sql, postgres_sql

CREATE, DROP = append_only_sql("core_activitylog", truncate=True)


def chain_existing_rows(apps, schema_editor):
    ActivityLog = apps.get_model("core", "ActivityLog")
    Head = apps.get_model("core", "ActivityChainHead")
    seq, prev = 0, GENESIS
    batch = []
    for row in ActivityLog.objects.order_by("id").iterator(chunk_size=2000):
        seq += 1
        row.seq, row.prev_hash = seq, prev
        values = {name: getattr(row, name) for name in RECORD_FIELDS}
        row.hash = prev = chain_hash(prev, canonical_record(values))
        batch.append(row)
        if len(batch) >= 2000:
            ActivityLog.objects.bulk_update(batch, ["seq", "prev_hash", "hash"])
            batch = []
    if batch:
        ActivityLog.objects.bulk_update(batch, ["seq", "prev_hash", "hash"])
    Head.objects.update_or_create(pk=1, defaults={"seq": seq, "hash": prev})


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0002_rate_bucket_staff_actions"),
    ]

    operations = [
        migrations.CreateModel(
            name="ActivityChainHead",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("seq", models.BigIntegerField(default=0)),
                ("hash", models.CharField(max_length=64)),
            ],
        ),
        migrations.CreateModel(
            name="ChainVerification",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("ok", models.BooleanField(default=False)),
                ("rows_checked", models.BigIntegerField(default=0)),
                ("verified_by", models.CharField(blank=True, max_length=254)),
                ("problem", models.TextField(blank=True)),
            ],
            options={"ordering": ["-started_at"]},
        ),
        migrations.AddField(
            model_name="activitylog",
            name="seq",
            field=models.BigIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="activitylog",
            name="prev_hash",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="activitylog",
            name="hash",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(chain_existing_rows, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="activitylog",
            name="seq",
            field=models.BigIntegerField(unique=True),
        ),
        postgres_sql(CREATE, DROP),
    ]
