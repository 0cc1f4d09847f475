"""Enrolment at /mfa/setup/: QR + secret, confirm with a code, backup codes shown once."""

from __future__ import annotations

import base64
import re

import pytest
from django.conf import settings
from django.core import mail
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import BackupCodeDevice
from asksage_admin.core.models import ActivityLog
from tests import factories

pytestmark = pytest.mark.django_db

SECRET_RE = re.compile(r'data-testid="totp-secret">([A-Z2-7= ]+)<')


def _secret(body: str) -> str:
    """The secret as shown (groups of four), as an app would read it."""
    return SECRET_RE.search(body).group(1).replace(" ", "")


def _pending_device(user) -> TOTPDevice:
    return TOTPDevice.objects.get(user=user, confirmed=False)


def _enrol(client, user, **extra) -> TOTPDevice:
    """Open the setup page and confirm it with the right code; the confirmed device."""
    client.get("/mfa/setup/")
    device = _pending_device(user)
    client.post("/mfa/setup/", {"code": factories.totp_code(device), **extra})
    return TOTPDevice.objects.get(pk=device.pk)


def _reauth(user) -> dict:
    """What replacing needs besides the new code: the password and the current app's code."""
    current = TOTPDevice.objects.get(user=user, confirmed=True)
    return {
        "reauth-password": factories.PASSWORD,
        "reauth-current_code": factories.totp_code(current),
    }


def test_setup_page_shows_inline_svg_qr_code(unverified_admin_client):
    body = unverified_admin_client.get("/mfa/setup/").content.decode()
    assert "<svg" in body
    assert "<img" not in body.split('class="qr"')[1].split("</div>")[0]


def test_qr_code_scales_to_its_box_without_clipping(unverified_admin_client):
    body = unverified_admin_client.get("/mfa/setup/").content.decode()
    svg_tag = re.search(r"<svg[^>]*>", body).group(0)
    assert "viewBox=" in svg_tag
    assert "width=" not in svg_tag


def test_setup_page_shows_the_secret_of_the_pending_device(unverified_admin_client, org_admin):
    body = unverified_admin_client.get("/mfa/setup/").content.decode()
    assert base64.b32decode(_secret(body)) == _pending_device(org_admin).bin_key


def test_setup_page_keeps_the_same_secret_across_reloads(unverified_admin_client):
    first = _secret(unverified_admin_client.get("/mfa/setup/").content.decode())
    second = _secret(unverified_admin_client.get("/mfa/setup/").content.decode())
    assert first == second


def test_setup_page_uses_no_external_service(unverified_admin_client):
    body = unverified_admin_client.get("/mfa/setup/").content.decode()
    assert "http://" not in body and "https://" not in body


def test_wrong_code_confirms_no_device(unverified_admin_client, org_admin):
    unverified_admin_client.get("/mfa/setup/")
    device = _pending_device(org_admin)
    wrong = f"{(int(factories.totp_code(device)) + 1) % 1_000_000:06d}"
    response = unverified_admin_client.post("/mfa/setup/", {"code": wrong})
    assert response.status_code == 200
    assert "That code is not valid" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=org_admin, confirmed=True).exists()
    assert not BackupCodeDevice.objects.filter(user=org_admin).exists()
    assert not unverified_admin_client.session.get("otp_device_id")


def test_wrong_code_logs_mfa_failed(unverified_admin_client, org_admin):
    unverified_admin_client.get("/mfa/setup/")
    unverified_admin_client.post("/mfa/setup/", {"code": "000000"})
    log = ActivityLog.objects.get()
    assert (log.action, log.actor, log.target) == ("mfa_failed", org_admin, "enrolment")


def test_non_numeric_code_is_refused_with_a_message(unverified_admin_client, org_admin):
    unverified_admin_client.get("/mfa/setup/")
    response = unverified_admin_client.post("/mfa/setup/", {"code": "12-34;56"})
    assert "letters and digits only" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=org_admin, confirmed=True).exists()


def test_right_code_confirms_the_device(unverified_admin_client, org_admin):
    device = _enrol(unverified_admin_client, org_admin)
    assert device.confirmed is True
    assert TOTPDevice.objects.filter(user=org_admin).count() == 1


def test_right_code_verifies_the_session(unverified_admin_client, org_admin):
    device = _enrol(unverified_admin_client, org_admin)
    assert unverified_admin_client.session["otp_device_id"] == device.persistent_id
    assert unverified_admin_client.get("/org/").status_code == 200


def test_right_code_logs_mfa_enrolled(unverified_admin_client, org_admin):
    _enrol(unverified_admin_client, org_admin)
    log = ActivityLog.objects.get()
    assert (log.action, log.actor, log.enterprise) == (
        "mfa_enrolled",
        org_admin,
        org_admin.enterprise,
    )


def test_right_code_rotates_the_session_key(unverified_admin_client, org_admin):
    unverified_admin_client.get("/mfa/setup/")
    before = unverified_admin_client.cookies[settings.SESSION_COOKIE_NAME].value
    unverified_admin_client.post(
        "/mfa/setup/", {"code": factories.totp_code(_pending_device(org_admin))}
    )
    after = unverified_admin_client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before


def test_enrolment_redirects_to_backup_codes_keeping_next(unverified_admin_client, org_admin):
    unverified_admin_client.get("/mfa/setup/?next=/org/")
    response = unverified_admin_client.post(
        "/mfa/setup/?next=/org/",
        {"code": factories.totp_code(_pending_device(org_admin)), "next": "/org/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/mfa/backup-codes/?next=%2Forg%2F"


def test_enrolment_shows_ten_backup_codes(unverified_admin_client, org_admin):
    _enrol(unverified_admin_client, org_admin)
    body = unverified_admin_client.get("/mfa/backup-codes/").content.decode()
    shown = re.findall(r"<li>([a-z2-7]{8})</li>", body)
    assert len(set(shown)) == 10
    device = BackupCodeDevice.objects.get(user=org_admin)
    assert device.codes.count() == 10
    assert all(device.verify_token(code) for code in shown)


def test_backup_codes_are_shown_only_once(unverified_admin_client, org_admin):
    _enrol(unverified_admin_client, org_admin)
    first = unverified_admin_client.get("/mfa/backup-codes/").content.decode()
    body = unverified_admin_client.get("/mfa/backup-codes/").content.decode()
    assert 'data-testid="backup-codes"' not in body
    for token in re.findall(r"<li>([a-z2-7]{8})</li>", first):
        assert token not in body
    assert "<strong>10</strong> unused backup codes" in body


def test_setup_with_confirmed_device_but_unverified_session_goes_to_verify(org_admin):
    factories.make_totp_device(org_admin)
    client = factories.signed_in_client(org_admin)
    response = client.get("/mfa/setup/")
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/verify/")
    assert TOTPDevice.objects.filter(user=org_admin).count() == 1


def test_posting_a_code_with_a_confirmed_device_unverified_cannot_replace_it(org_admin):
    """Someone with the password only must not swap the victim's authenticator."""
    original = factories.make_totp_device(org_admin)
    client = factories.signed_in_client(org_admin)
    client.post("/mfa/setup/", {"code": "123456"})
    assert list(TOTPDevice.objects.filter(user=org_admin)) == [original]


def test_verified_admin_can_replace_the_authenticator(org_admin_client, org_admin):
    old = TOTPDevice.objects.get(user=org_admin)
    new = _enrol(org_admin_client, org_admin, **_reauth(org_admin))
    assert list(TOTPDevice.objects.filter(user=org_admin)) == [new]
    assert new.pk != old.pk
    assert org_admin_client.get("/org/").status_code == 200


def test_replacing_is_emailed_and_logged(org_admin_client, org_admin):
    _enrol(org_admin_client, org_admin, **_reauth(org_admin))
    assert [m.to for m in mail.outbox] == [[org_admin.email]]
    assert "authenticator" in mail.outbox[0].subject.lower()
    log = ActivityLog.objects.get(action="mfa_enrolled")
    assert (log.actor, log.target) == (org_admin, "authenticator replaced")


def test_replacing_without_the_password_is_refused(org_admin_client, org_admin):
    old = TOTPDevice.objects.get(user=org_admin)
    bad = {**_reauth(org_admin), "reauth-password": "Wrong-Password-123"}
    pending = _enrol(org_admin_client, org_admin, **bad)
    assert not pending.confirmed
    assert TOTPDevice.objects.get(user=org_admin, confirmed=True) == old
    assert not mail.outbox


def test_replacing_without_a_current_code_is_refused(org_admin_client, org_admin):
    old = TOTPDevice.objects.get(user=org_admin)
    pending = _enrol(org_admin_client, org_admin)  # new code only: no password, no current code
    assert not pending.confirmed
    assert TOTPDevice.objects.get(user=org_admin, confirmed=True) == old
    wrong_code = {**_reauth(org_admin), "reauth-current_code": "000000"}
    assert not _enrol(org_admin_client, org_admin, **wrong_code).confirmed


def test_mfa_step_rotates_the_session_key_and_the_csrf_token(unverified_admin_client, org_admin):
    client = unverified_admin_client
    client.get("/mfa/setup/")
    key_before = client.session.session_key
    csrf_before = client.cookies[settings.CSRF_COOKIE_NAME].value
    device = _pending_device(org_admin)
    response = client.post("/mfa/setup/", {"code": factories.totp_code(device)})
    assert response.status_code == 302
    assert client.session.session_key != key_before
    assert response.cookies[settings.CSRF_COOKIE_NAME].value not in ("", csrf_before)


def test_anonymous_setup_goes_to_login():
    from django.test import Client

    response = Client().get("/mfa/setup/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not TOTPDevice.objects.exists()


def test_member_may_enrol_voluntarily(member_client, member):
    device = _enrol(member_client, member)
    assert device.confirmed is True


def test_replacing_page_says_so_and_offers_cancel(org_admin_client):
    body = org_admin_client.get("/mfa/setup/").content.decode()
    assert "Replace your authenticator" in body
    assert '<a href="/settings/">Cancel</a>' in body


def test_member_setup_page_does_not_claim_the_role_requires_it(member_client):
    body = member_client.get("/mfa/setup/").content.decode()
    assert "Your role requires" not in body
    assert "Protect your account" in body
