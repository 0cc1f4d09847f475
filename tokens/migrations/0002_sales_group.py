"""The "Sales" group: exactly what provisioning in /staff/ needs.

Create and edit enterprises (attach users, choose admins and auditors, activate, suspend),
look up registered users, record purchase lines. No delete anywhere, no user edits, no
changes to purchase lines (the ledger is append-only).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SALES_PERMISSIONS = [
    ("accounts", "add_enterprise"),
    ("accounts", "change_enterprise"),
    ("accounts", "view_enterprise"),
    ("accounts", "view_user"),
    ("tokens", "add_tokenpurchase"),
    ("tokens", "view_tokenpurchase"),
]


def create_sales_group(apps, schema_editor):
    # Permissions are normally created after migrate; make sure they exist on a fresh database.
    for label in ("accounts", "tokens"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="Sales")
    group.permissions.set(
        [
            Permission.objects.get(content_type__app_label=app, codename=codename)
            for app, codename in SALES_PERMISSIONS
        ]
    )


def remove_sales_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="Sales").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("tokens", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_sales_group, remove_sales_group)]
