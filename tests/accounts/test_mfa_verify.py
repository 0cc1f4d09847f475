"""Verification at /mfa/verify/: replay refused, failures throttled, session key rotated."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from asksage_admin.core.models import ActivityLog
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def device(org_admin) -> TOTPDevice:
    return factories.make_totp_device(org_admin)


@pytest.fixture
def password_client(org_admin, device) -> Client:
    """The admin after the password step, with a confirmed authenticator."""
    return factories.signed_in_client(org_admin)


def _wrong_code(device: TOTPDevice) -> str:
    return f"{(int(factories.totp_code(device)) + 500_000) % 1_000_000:06d}"


def _refresh(device: TOTPDevice) -> TOTPDevice:
    return TOTPDevice.objects.get(pk=device.pk)


def _let_throttle_expire(device: TOTPDevice) -> None:
    """Move the last failure into the past: what waiting out the back-off does."""
    device = _refresh(device)
    device.throttling_failure_timestamp -= timedelta(hours=1)
    device.save(update_fields=["throttling_failure_timestamp"])


def test_right_code_verifies_the_session(password_client, device):
    response = password_client.post("/mfa/verify/", {"code": factories.totp_code(device)})
    assert response.status_code == 302
    assert password_client.session["otp_device_id"] == device.persistent_id
    assert password_client.get("/org/").status_code == 200


def test_right_code_redirects_to_next(password_client, device):
    response = password_client.post(
        "/mfa/verify/?next=/settings/", {"code": factories.totp_code(device), "next": "/settings/"}
    )
    assert response["Location"] == "/settings/"


def test_next_pointing_to_another_site_is_ignored(password_client, device):
    response = password_client.post(
        "/mfa/verify/", {"code": factories.totp_code(device), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/org/"


def test_verify_logs_mfa_verified(password_client, device, org_admin):
    password_client.post("/mfa/verify/", {"code": factories.totp_code(device)})
    log = ActivityLog.objects.get()
    assert (log.action, log.actor, log.enterprise) == (
        "mfa_verified",
        org_admin,
        org_admin.enterprise,
    )
    assert log.ip_address == "127.0.0.1"
    assert log.request_id


def test_session_key_changes_after_verification(password_client, device):
    password_client.get("/mfa/verify/")
    before = password_client.cookies[settings.SESSION_COOKIE_NAME].value
    password_client.post("/mfa/verify/", {"code": factories.totp_code(device)})
    after = password_client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before
    assert password_client.session.session_key == after


def test_old_session_key_is_dead_after_verification(password_client, device):
    password_client.get("/mfa/verify/")
    before = password_client.cookies[settings.SESSION_COOKIE_NAME].value
    password_client.post("/mfa/verify/", {"code": factories.totp_code(device)})
    stale = Client()
    stale.cookies[settings.SESSION_COOKIE_NAME] = before
    response = stale.get("/org/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_wrong_code_is_refused(password_client, device):
    response = password_client.post("/mfa/verify/", {"code": _wrong_code(device)})
    assert response.status_code == 200
    assert "That code is not valid" in response.content.decode()
    assert "otp_device_id" not in password_client.session
    assert password_client.get("/org/").status_code == 302


def test_wrong_code_logs_mfa_failed(password_client, device, org_admin):
    password_client.post("/mfa/verify/", {"code": _wrong_code(device)})
    log = ActivityLog.objects.get()
    assert (log.action, log.actor, log.target) == ("mfa_failed", org_admin, "verification")


def test_replayed_code_is_refused_in_another_session(org_admin, device):
    code = factories.totp_code(device)
    first = factories.signed_in_client(org_admin)
    second = factories.signed_in_client(org_admin)
    assert first.post("/mfa/verify/", {"code": code}).status_code == 302
    response = second.post("/mfa/verify/", {"code": code})
    assert response.status_code == 200
    assert "each works only once" in response.content.decode()
    assert "otp_device_id" not in second.session


def test_code_used_at_enrolment_cannot_be_replayed_at_verify(unverified_admin_client, org_admin):
    unverified_admin_client.get("/mfa/setup/")
    pending = TOTPDevice.objects.get(user=org_admin)
    code = factories.totp_code(pending)
    unverified_admin_client.post("/mfa/setup/", {"code": code})
    other = factories.signed_in_client(org_admin)
    other.post("/mfa/verify/", {"code": code})
    assert "otp_device_id" not in other.session


def test_earlier_code_is_refused_after_a_later_one_was_used(password_client, org_admin, device):
    """Codes are accepted one step either side; once a code is spent, older ones are dead."""
    import time

    now = time.time()
    password_client.post("/mfa/verify/", {"code": factories.totp_code(device, at=now)})
    other = factories.signed_in_client(org_admin)
    other.post("/mfa/verify/", {"code": factories.totp_code(device, at=now - 30)})
    assert "otp_device_id" not in other.session


def test_failures_throttle_even_the_right_code(password_client, device):
    for _ in range(4):
        password_client.post("/mfa/verify/", {"code": _wrong_code(device)})
        _let_throttle_expire(device)
    password_client.post("/mfa/verify/", {"code": _wrong_code(device)})
    assert _refresh(device).throttling_failure_count == 5  # now locked for 16 s

    response = password_client.post("/mfa/verify/", {"code": factories.totp_code(device)})
    assert response.status_code == 200
    assert "Wait" in response.content.decode()
    assert "otp_device_id" not in password_client.session


def test_throttled_attempts_do_not_spend_the_code(password_client, device):
    password_client.post("/mfa/verify/", {"code": _wrong_code(device)})
    for _ in range(4):  # still inside the back-off window: refused without checking
        password_client.post("/mfa/verify/", {"code": _wrong_code(device)})
    _let_throttle_expire(device)
    response = password_client.post("/mfa/verify/", {"code": factories.totp_code(device)})
    assert response.status_code == 302
    assert password_client.session["otp_device_id"] == device.persistent_id


def test_throttle_applies_across_sessions(org_admin, device):
    """A second browser does not get a fresh allowance: the throttle lives on the device."""
    factories.signed_in_client(org_admin).post("/mfa/verify/", {"code": _wrong_code(device)})
    other = factories.signed_in_client(org_admin)
    response = other.post("/mfa/verify/", {"code": factories.totp_code(device)})
    assert "Wait" in response.content.decode()
    assert "otp_device_id" not in other.session


def test_throttle_lifts_after_the_wait(password_client, device):
    password_client.post("/mfa/verify/", {"code": _wrong_code(device)})
    _let_throttle_expire(device)
    response = password_client.post("/mfa/verify/", {"code": factories.totp_code(device)})
    assert response.status_code == 302
    assert _refresh(device).throttling_failure_count == 0


def test_enrolment_is_throttled_too(unverified_admin_client, org_admin):
    unverified_admin_client.get("/mfa/setup/")
    pending = TOTPDevice.objects.get(user=org_admin)
    unverified_admin_client.post("/mfa/setup/", {"code": _wrong_code(pending)})
    response = unverified_admin_client.post("/mfa/setup/", {"code": factories.totp_code(pending)})
    assert "Wait" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=org_admin, confirmed=True).exists()


def test_reloading_setup_does_not_reset_the_throttle(unverified_admin_client, org_admin):
    unverified_admin_client.get("/mfa/setup/")
    pending = TOTPDevice.objects.get(user=org_admin)
    unverified_admin_client.post("/mfa/setup/", {"code": _wrong_code(pending)})
    unverified_admin_client.get("/mfa/setup/")
    assert TOTPDevice.objects.get(user=org_admin).pk == pending.pk
    assert _refresh(pending).throttling_failure_count == 1


def test_verify_without_device_goes_to_setup(unverified_admin_client):
    response = unverified_admin_client.get("/mfa/verify/")
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/setup/")


def test_verify_when_already_verified_goes_home(org_admin_client):
    response = org_admin_client.get("/mfa/verify/")
    assert response.status_code == 302
    assert response["Location"] == "/org/"


def test_member_with_a_device_must_verify_too(member):
    factories.make_totp_device(member)
    response = factories.signed_in_client(member).get("/settings/")
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/verify/")


def test_banned_user_cannot_verify(org_admin, device, password_client):
    User.objects.filter(pk=org_admin.pk).update(status=User.Status.BANNED)
    response = password_client.post("/mfa/verify/", {"code": factories.totp_code(device)})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not ActivityLog.objects.filter(action="mfa_verified").exists()


def test_verify_field_accepts_letters_for_backup_codes(password_client):
    """A digits-only phone keypad would make backup codes impossible to type."""
    body = password_client.get("/mfa/verify/").content.decode()
    assert 'inputmode="text"' in body
    assert 'inputmode="numeric"' not in body
