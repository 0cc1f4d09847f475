"""`manage.py seed_large` (PostgreSQL): shrunk to a few users, it still builds and signs in."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import User
from asksage_admin.core.models import ActivityLog
from asksage_admin.demo.management.commands import seed_large

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
PASSWORD = "Scale-Test-Passw0rd"


@pytest.fixture(autouse=True)
def small_scale(monkeypatch) -> None:
    monkeypatch.setattr(seed_large, "BIG_USERS", 5)
    monkeypatch.setattr(seed_large, "HUGE_USERS", 5)
    monkeypatch.setattr(seed_large, "SMALL_ENTERPRISES", 1)
    monkeypatch.setattr(seed_large, "MONTHS", 2)


def _seed() -> str:
    out = StringIO()
    call_command("seed_large", "--password", PASSWORD, stdout=out)
    return out.getvalue()


def test_prints_the_password_to_sign_in_with_not_its_hash():
    output = _seed()
    admin = User.objects.get(email=seed_large.ADMIN_EMAIL)
    assert f"sign in as {seed_large.ADMIN_EMAIL} / {PASSWORD}" in output
    assert admin.password not in output
    assert admin.check_password(PASSWORD)


def test_writes_the_activity_history_into_the_activity_log():
    _seed()
    admin = User.objects.get(email=seed_large.ADMIN_EMAIL)
    assert ActivityLog.objects.for_enterprise(admin.enterprise).count() == 100_000
