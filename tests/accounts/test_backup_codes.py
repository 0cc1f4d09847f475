"""Backup codes: each works exactly once; regenerating cancels the old ones."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from asksage_admin.core.models import ActivityLog
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def codes(org_admin) -> list[str]:
    """An enrolled admin's backup codes, as issued at enrolment."""
    device = TOTPDevice.objects.create(user=org_admin, name="Authenticator app", confirmed=False)
    _, codes = services.confirm_totp_device(user=org_admin, code=factories.totp_code(device))
    return codes


def _password_client(user) -> Client:
    return factories.signed_in_client(user)


def test_enrolment_issues_ten_distinct_codes(codes, org_admin):
    assert len(set(codes)) == 10
    assert services.backup_codes_left(org_admin) == 10


def test_backup_code_verifies_the_session(codes, org_admin):
    client = _password_client(org_admin)
    response = client.post("/mfa/verify/", {"code": codes[0]})
    assert response.status_code == 302
    assert client.get("/org/").status_code == 200


def test_backup_code_is_accepted_in_upper_case_with_spaces(codes, org_admin):
    client = _password_client(org_admin)
    client.post("/mfa/verify/", {"code": f" {codes[0][:4].upper()} {codes[0][4:].upper()} "})
    assert client.get("/org/").status_code == 200


def test_backup_code_works_exactly_once(codes, org_admin):
    _password_client(org_admin).post("/mfa/verify/", {"code": codes[0]})
    second = _password_client(org_admin)
    response = second.post("/mfa/verify/", {"code": codes[0]})
    assert response.status_code == 200
    assert "That code is not valid" in response.content.decode()
    assert second.get("/org/").status_code == 302


def test_backup_code_use_leaves_the_others(codes, org_admin):
    _password_client(org_admin).post("/mfa/verify/", {"code": codes[0]})
    assert services.backup_codes_left(org_admin) == 9
    assert not StaticToken.objects.filter(token=codes[0]).exists()


def test_backup_code_use_logs_backup_code_used(codes, org_admin):
    _password_client(org_admin).post("/mfa/verify/", {"code": codes[0]})
    log = ActivityLog.objects.get(action="backup_code_used")
    assert log.actor == org_admin
    assert log.new_value == {"remaining": 9}
    assert not ActivityLog.objects.filter(action="mfa_verified").exists()


def test_backup_code_use_warns_how_many_are_left(codes, org_admin):
    client = _password_client(org_admin)
    response = client.post("/mfa/verify/", {"code": codes[0]}, follow=True)
    assert "9 backup codes left" in response.content.decode()


def test_another_users_backup_code_is_refused(codes, org_admin, auditor):
    factories.make_totp_device(auditor)
    services.regenerate_backup_codes(user=auditor)
    client = _password_client(auditor)
    client.post("/mfa/verify/", {"code": codes[0]})
    assert "otp_device_id" not in client.session
    assert StaticToken.objects.filter(token=codes[0]).exists()


def test_regenerating_invalidates_the_old_codes(codes, org_admin_client, org_admin):
    org_admin_client.post("/mfa/backup-codes/")
    client = _password_client(org_admin)
    client.post("/mfa/verify/", {"code": codes[1]})
    assert "otp_device_id" not in client.session


def test_regenerating_shows_ten_new_codes_once(codes, org_admin_client, org_admin):
    response = org_admin_client.post("/mfa/backup-codes/", follow=True)
    shown = re.findall(r"<li>([a-z2-7]{8})</li>", response.content.decode())
    assert len(shown) == 10
    assert not set(shown) & set(codes)
    assert set(shown) == set(
        StaticToken.objects.filter(device__user=org_admin).values_list("token", flat=True)
    )
    again = org_admin_client.get("/mfa/backup-codes/").content.decode()
    assert not any(code in again for code in shown)


def test_new_code_works_after_regenerating(codes, org_admin_client, org_admin):
    response = org_admin_client.post("/mfa/backup-codes/", follow=True)
    new_code = re.findall(r"<li>([a-z2-7]{8})</li>", response.content.decode())[0]
    client = _password_client(org_admin)
    client.post("/mfa/verify/", {"code": new_code})
    assert client.get("/org/").status_code == 200


def test_regenerating_logs_backup_codes_regenerated(codes, org_admin_client, org_admin):
    org_admin_client.post("/mfa/backup-codes/")
    log = ActivityLog.objects.get(action="backup_codes_regenerated")
    assert log.actor == org_admin


def test_regenerating_keeps_one_backup_device(codes, org_admin_client, org_admin):
    org_admin_client.post("/mfa/backup-codes/")
    assert StaticDevice.objects.filter(user=org_admin).count() == 1


def test_unverified_user_cannot_regenerate(codes, org_admin):
    client = _password_client(org_admin)
    response = client.post("/mfa/backup-codes/")
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/verify/")
    assert set(StaticToken.objects.values_list("token", flat=True)) == set(codes)
    assert not ActivityLog.objects.filter(action="backup_codes_regenerated").exists()


def test_backup_codes_page_is_get_or_post_only(org_admin_client):
    assert org_admin_client.put("/mfa/backup-codes/").status_code == 405


def test_wrong_backup_code_is_throttled(codes, org_admin):
    client = _password_client(org_admin)
    client.post("/mfa/verify/", {"code": "zzzzzzzz"})
    response = client.post("/mfa/verify/", {"code": codes[0]})
    assert "Wait" in response.content.decode()
    assert StaticToken.objects.filter(token=codes[0]).exists()
