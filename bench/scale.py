"""The benchmark's data set and a signed-in, OTP-verified client for its admins."""

from __future__ import annotations

from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Enterprise, User

BIG = "scale-big"
HUGE = "scale-huge"


def ensure_data() -> None:
    if not Enterprise.objects.filter(slug=BIG).exists():
        print("No scale data yet: running `manage.py seed_large` (a few minutes) ...", flush=True)
        call_command("seed_large")


def server_version() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]


def describe() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM accounts_user),"
            " (SELECT count(*) FROM accounts_enterprise),"
            " (SELECT count(*) FROM metrics_usageevent),"
            " (SELECT count(*) FROM metrics_monthlyusage)"
        )
        users, enterprises, events, monthly = cursor.fetchone()
    return (
        f"{enterprises:,} enterprises, {users:,} users, {events:,} ledger events, "
        f"{monthly:,} monthly roll-ups"
    )


def admin_client(slug: str) -> tuple[Client, Enterprise]:
    """A client of the enterprise's admin with an OTP-verified session (as after MFA)."""
    enterprise = Enterprise.objects.get(slug=slug)
    admin = User.objects.filter(enterprise=enterprise, role=User.Role.ADMIN).first()
    device = TOTPDevice.objects.filter(user=admin, confirmed=True).first()
    device = device or TOTPDevice.objects.create(user=admin, name="bench", confirmed=True)
    client = Client()
    client.force_login(admin)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client, enterprise
