"""Backup codes: stored only as salted hashes, each works exactly once, shown once."""

from __future__ import annotations

import importlib
import re
import time

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.models import BackupCode, BackupCodeDevice
from asksage_admin.core.models import ActivityLog
from tests import factories

pytestmark = pytest.mark.django_db
CODE_RE = re.compile(r"<li>([a-z2-7]{8})</li>")


@pytest.fixture
def codes(org_admin) -> list[str]:
    """An enrolled admin's backup codes, as issued at enrolment."""
    device = TOTPDevice.objects.create(user=org_admin, name="Authenticator app", confirmed=False)
    assert services.confirm_totp_device(user=org_admin, code=factories.totp_code(device)).ok
    return services.issue_backup_codes(user=org_admin)


def _password_client(user) -> Client:
    return factories.signed_in_client(user)


def _reauth(user, **extra) -> dict:
    """Password and the authenticator's next code (the current one was spent at enrolment)."""
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    code = factories.totp_code(device, at=time.time() + 30)
    return {"reauth-password": factories.PASSWORD, "reauth-current_code": code, **extra}


def _stored_hashes() -> list[str]:
    return list(BackupCode.objects.values_list("code_hash", flat=True))


def test_enrolment_shows_ten_codes_and_the_database_holds_none_of_them(org_admin):
    client = _password_client(org_admin)
    client.get("/mfa/setup/")
    device = TOTPDevice.objects.get(user=org_admin)
    client.post("/mfa/setup/", {"code": factories.totp_code(device)})
    page = client.get("/mfa/backup-codes/")
    shown = CODE_RE.findall(page.content.decode())
    assert len(set(shown)) == 10
    assert "no-store" in page["Cache-Control"]
    hashes = _stored_hashes()
    assert len(hashes) == 10 and all(h.startswith("pbkdf2_sha256$") for h in hashes)
    stored = " ".join(hashes) + str(list(StaticToken.objects.values()))
    sessions = " ".join(s.get_decoded().__repr__() for s in Session.objects.all())
    assert not any(code in stored or code in sessions for code in shown)


def test_codes_are_shown_only_once_after_enrolment(org_admin):
    client = _password_client(org_admin)
    client.get("/mfa/setup/")
    device = TOTPDevice.objects.get(user=org_admin)
    client.post("/mfa/setup/", {"code": factories.totp_code(device)})
    shown = CODE_RE.findall(client.get("/mfa/backup-codes/").content.decode())
    again = client.get("/mfa/backup-codes/").content.decode()
    assert shown and not CODE_RE.findall(again)


def test_backup_code_verifies_the_session(codes, org_admin):
    client = _password_client(org_admin)
    response = client.post("/mfa/verify/", {"code": codes[0]})
    assert response.status_code == 302
    assert client.get("/org/").status_code == 200


def test_backup_code_is_accepted_in_upper_case_with_spaces(codes, org_admin):
    client = _password_client(org_admin)
    client.post("/mfa/verify/", {"code": f" {codes[0][:4].upper()} {codes[0][4:].upper()} "})
    assert client.get("/org/").status_code == 200


def test_reused_backup_code_fails(codes, org_admin):
    _password_client(org_admin).post("/mfa/verify/", {"code": codes[0]})
    second = _password_client(org_admin)
    response = second.post("/mfa/verify/", {"code": codes[0]})
    assert response.status_code == 200
    assert "That code is not valid" in response.content.decode()
    assert second.get("/org/").status_code == 302


def test_backup_code_use_leaves_the_others(codes, org_admin):
    _password_client(org_admin).post("/mfa/verify/", {"code": codes[0]})
    assert services.backup_codes_left(org_admin) == 9


def test_backup_code_use_logs_and_emails_the_user(
    codes, org_admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _password_client(org_admin).post("/mfa/verify/", {"code": codes[0]})
    log = ActivityLog.objects.get(action="backup_code_used")
    assert log.actor == org_admin
    assert log.new_value == {"remaining": 9}
    assert not ActivityLog.objects.filter(action="mfa_verified").exists()
    (message,) = mail.outbox
    assert message.to == [org_admin.email] and "backup code" in message.subject.lower()
    assert codes[0] not in message.body


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
    assert services.backup_codes_left(org_admin) == 10


def test_regenerating_needs_the_password_and_a_current_code(codes, org_admin_client, org_admin):
    before = _stored_hashes()
    wrong_password = _reauth(org_admin, **{"reauth-password": "not-my-password"})
    response = org_admin_client.post("/mfa/backup-codes/", wrong_password)
    assert response.status_code == 400 and "password is not correct" in response.content.decode()
    no_code = {"reauth-password": factories.PASSWORD, "reauth-current_code": "000000"}
    assert org_admin_client.post("/mfa/backup-codes/", no_code).status_code == 400
    assert org_admin_client.post("/mfa/backup-codes/").status_code == 400
    assert _stored_hashes() == before
    assert not ActivityLog.objects.filter(action="backup_codes_regenerated").exists()


def test_regenerating_shows_ten_new_codes_once_without_storing_them(
    codes, org_admin_client, org_admin
):
    response = org_admin_client.post("/mfa/backup-codes/", _reauth(org_admin))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    shown = CODE_RE.findall(response.content.decode())
    assert len(set(shown)) == 10 and not set(shown) & set(codes)
    assert not any(code in " ".join(_stored_hashes()) for code in shown)
    again = org_admin_client.get("/mfa/backup-codes/").content.decode()
    assert not CODE_RE.findall(again)


def test_regenerating_invalidates_the_old_codes(codes, org_admin_client, org_admin):
    org_admin_client.post("/mfa/backup-codes/", _reauth(org_admin))
    client = _password_client(org_admin)
    client.post("/mfa/verify/", {"code": codes[1]})
    assert "otp_device_id" not in client.session


def test_new_code_works_after_regenerating(codes, org_admin_client, org_admin):
    response = org_admin_client.post("/mfa/backup-codes/", _reauth(org_admin))
    new_code = CODE_RE.findall(response.content.decode())[0]
    client = _password_client(org_admin)
    client.post("/mfa/verify/", {"code": new_code})
    assert client.get("/org/").status_code == 200


def test_regenerating_logs_and_emails(codes, org_admin_client, org_admin):
    org_admin_client.post("/mfa/backup-codes/", _reauth(org_admin))
    log = ActivityLog.objects.get(action="backup_codes_regenerated")
    assert log.actor == org_admin
    assert [m.to for m in mail.outbox] == [[org_admin.email]]


def test_regenerating_keeps_one_backup_device(codes, org_admin_client, org_admin):
    org_admin_client.post("/mfa/backup-codes/", _reauth(org_admin))
    assert BackupCodeDevice.objects.filter(user=org_admin).count() == 1


def test_unverified_user_cannot_regenerate(codes, org_admin):
    client = _password_client(org_admin)
    before = _stored_hashes()
    response = client.post("/mfa/backup-codes/", _reauth(org_admin))
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/verify/")
    assert _stored_hashes() == before
    assert not ActivityLog.objects.filter(action="backup_codes_regenerated").exists()


def test_backup_codes_page_is_get_or_post_only(org_admin_client):
    assert org_admin_client.put("/mfa/backup-codes/").status_code == 405


def test_wrong_backup_code_is_throttled(codes, org_admin):
    client = _password_client(org_admin)
    client.post("/mfa/verify/", {"code": "zzzzzzzz"})
    response = client.post("/mfa/verify/", {"code": codes[0]})
    assert "Wait" in response.content.decode()
    assert services.backup_codes_left(org_admin) == 10


def test_data_migration_hashes_plain_static_tokens(org_admin):
    static = StaticDevice.objects.create(user=org_admin, name="Backup codes", confirmed=True)
    plain = ["abcdefgh", "ijklmnop"]
    StaticToken.objects.bulk_create(StaticToken(device=static, token=t) for t in plain)
    migration = importlib.import_module("accounts.migrations.0003_hash_static_backup_codes")
    migration.hash_static_tokens(apps, None)
    assert not StaticToken.objects.exists() and not StaticDevice.objects.exists()
    assert not any(t in " ".join(_stored_hashes()) for t in plain)
    factories.make_totp_device(org_admin)
    client = _password_client(org_admin)
    client.post("/mfa/verify/", {"code": plain[1]})
    assert client.get("/org/").status_code == 200
