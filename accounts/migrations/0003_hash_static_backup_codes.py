"""Move plain django-otp static tokens into hashed backup-code devices, then delete them."""

from django.db import migrations


def hash_static_tokens(apps, schema_editor):
    from accounts.models import hash_backup_code

    StaticDevice = apps.get_model("otp_static", "StaticDevice")
    BackupCodeDevice = apps.get_model("accounts", "BackupCodeDevice")
    BackupCode = apps.get_model("accounts", "BackupCode")
    for static in StaticDevice.objects.all().iterator():
        device, _ = BackupCodeDevice.objects.get_or_create(
            user_id=static.user_id,
            defaults={"name": "Backup codes", "confirmed": static.confirmed},
        )
        tokens = list(static.token_set.values_list("token", flat=True))
        BackupCode.objects.bulk_create(
            BackupCode(device=device, code_hash=hash_backup_code(t)) for t in tokens
        )
        static.token_set.all().delete()
        static.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_security_hardening"),
        ("otp_static", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(hash_static_tokens, migrations.RunPython.noop)]
