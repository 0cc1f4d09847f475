"""`manage.py seed_demo`: an active Demo Corp to sign in to, as often as you like."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Enterprise, User

pytestmark = pytest.mark.django_db

ADMIN = "admin@demo-corp.example"
AUDITOR = "auditor@demo-corp.example"


def _seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def _demo_corp() -> Enterprise:
    return Enterprise.objects.get(name="Demo Corp")


def test_seed_demo_creates_an_active_demo_corp():
    _seed()
    assert _demo_corp().status == Enterprise.Status.ACTIVE


def test_seed_demo_creates_one_admin_one_auditor_and_at_least_eight_members():
    _seed()
    people = User.objects.in_enterprise(_demo_corp())
    assert list(people.filter(role="admin").values_list("email", flat=True)) == [ADMIN]
    assert list(people.filter(role="auditor").values_list("email", flat=True)) == [AUDITOR]
    assert people.filter(role="member").count() >= 8


def test_seed_demo_is_idempotent():
    _seed()
    first = (Enterprise.objects.count(), User.objects.count())
    _seed()
    assert (Enterprise.objects.count(), User.objects.count()) == first
    assert User.objects.in_enterprise(_demo_corp()).filter(role="admin").count() == 1


def test_seed_demo_prints_the_sign_ins_and_the_password():
    out = _seed()
    assert ADMIN in out
    assert AUDITOR in out
    for member in User.objects.filter(enterprise__slug="demo-corp", role=User.Role.MEMBER):
        assert member.email in out
    assert "demo-Passw0rd!" in out


def test_seed_demo_honours_password():
    out = _seed("--password", "Another-Demo-Secret-7")
    assert "Another-Demo-Secret-7" in out
    admin = User.objects.get(email=ADMIN)
    assert admin.check_password("Another-Demo-Secret-7")
    assert User.objects.in_enterprise(_demo_corp()).count() == sum(
        u.check_password("Another-Demo-Secret-7") for u in User.objects.in_enterprise(_demo_corp())
    )


def test_seeded_admin_can_sign_in_with_the_printed_password(client):
    _seed()
    client.post("/accounts/login/", {"username": ADMIN, "password": "demo-Passw0rd!"})
    assert "_auth_user_id" in client.session


def test_seed_demo_keeps_an_enrolled_authenticator(db):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    _seed()
    device = TOTPDevice.objects.create(user=User.objects.get(email=ADMIN), confirmed=True)
    _seed()
    assert TOTPDevice.objects.filter(pk=device.pk, confirmed=True).exists()
