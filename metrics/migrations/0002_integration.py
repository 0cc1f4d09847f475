"""Integrations own their keys and their event ids.

Each existing key becomes an integration of its own, with the key's id as the
integration's id, so the usage events' integration_id values stay valid as the
foreign key moves from the key to the integration.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.core.management.color import no_style
from django.db import migrations, models


def one_integration_per_key(apps, schema_editor):
    Integration = apps.get_model("metrics", "Integration")
    IntegrationKey = apps.get_model("metrics", "IntegrationKey")
    for key in IntegrationKey.objects.order_by("pk"):
        Integration.objects.create(
            pk=key.pk, name=key.name, created_by_id=key.created_by_id, created_at=key.created_at
        )
        IntegrationKey.objects.filter(pk=key.pk).update(integration_id=key.pk)
    # Ids were given explicitly: move the sequence past them.
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [Integration]):
            cursor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Integration",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100, unique=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.AddField(
            model_name="integrationkey",
            name="integration",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name="keys", to="metrics.integration"),
        ),
        migrations.RunPython(one_integration_per_key, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="integrationkey",
            name="integration",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="keys", to="metrics.integration"),
        ),
        migrations.RemoveField(model_name="integrationkey", name="name"),
        migrations.AlterModelOptions(
            name="integrationkey",
            options={"ordering": ["integration__name", "created_at"]},
        ),
        migrations.AlterField(
            model_name="usageevent",
            name="integration",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="metrics.integration"),
        ),
    ]
