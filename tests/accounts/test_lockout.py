"""Sign-in lockout (django-axes): per (email, client IP), progressive, and not fooled by
a client-written X-Forwarded-For."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.utils import timezone

from accounts import lockout
from asksage_admin.core.models import ActivityLog
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
HOME, OFFICE = "198.51.100.7", "203.0.113.9"


def _sign_in(email: str, password: str, ip: str = HOME, **headers):
    client = Client(REMOTE_ADDR=ip, **headers)
    response = client.post("/accounts/login/", {"username": email, "password": password})
    return client, response


def _fail(email: str, times: int, ip: str = HOME, **headers) -> list[int]:
    return [_sign_in(email, "Wrong-Password-1", ip, **headers)[1].status_code for _ in range(times)]


def test_sixth_wrong_password_locks_the_email_and_ip_pair(member):
    assert _fail(member.email, 5) == [200] * 5
    assert _fail(member.email, 1) == [429]
    client, response = _sign_in(member.email, PASSWORD)
    assert response.status_code == 429
    assert SESSION_KEY not in client.session


def test_lockout_explains_itself(member):
    _fail(member.email, 6)
    body = _sign_in(member.email, PASSWORD)[1].content.decode()
    assert "Too many wrong passwords for this email address" in body
    assert "paused for 5 minutes" in body


def test_same_email_from_another_ip_is_not_locked(member):
    _fail(member.email, 6)
    client, response = _sign_in(member.email, PASSWORD, ip=OFFICE)
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(member.pk)


def test_other_email_from_the_locked_ip_is_not_locked(member, org_admin):
    _fail(member.email, 6)
    assert _sign_in(org_admin.email, PASSWORD)[1].status_code == 302


def test_email_case_does_not_dodge_the_counter(member):
    _fail(member.email, 3)
    _fail(member.email.upper(), 3)
    assert _sign_in(member.email, PASSWORD)[1].status_code == 429


def test_unknown_email_locks_with_the_same_words(member):
    known = (_fail(member.email, 6), _sign_in(member.email, "x")[1])
    unknown = (_fail("nobody@acme.test", 6), _sign_in("nobody@acme.test", "x")[1])
    assert known[0] == unknown[0]
    assert known[1].status_code == unknown[1].status_code == 429
    assert known[1].content.decode().replace(member.email, "") == unknown[
        1
    ].content.decode().replace("nobody@acme.test", "")


def test_lock_lifts_after_the_cool_off(member):
    _fail(member.email, 6)
    later = timezone.now() + timedelta(minutes=6)
    # axes stamps attempts through its own import of now(); both clocks move together.
    with (
        mock.patch("django.utils.timezone.now", return_value=later),
        mock.patch("axes.handlers.proxy.now", return_value=later),
    ):
        assert _sign_in(member.email, PASSWORD)[1].status_code == 302


def test_cool_off_doubles_with_each_lockout(member):
    _fail(member.email, 6)
    request = mock.Mock(POST={"username": member.email}, axes_credentials=None)
    request.axes_ip_address = HOME
    assert lockout.cool_off(request) == timedelta(minutes=5)
    AccessAttempt.objects.all().delete()  # the first cool-off is over
    _fail(member.email, 6)
    assert lockout.cool_off(request) == timedelta(minutes=10)


def test_forged_forwarded_for_does_not_change_the_recorded_ip(member):
    _fail(member.email, 6, HTTP_X_FORWARDED_FOR=OFFICE)
    assert set(AccessFailureLog.objects.values_list("ip_address", flat=True)) == {HOME}
    assert set(
        ActivityLog.objects.filter(action="sign_in_failed").values_list("ip_address", flat=True)
    ) == {HOME}
    # ... so a new forged header neither dodges the lock nor frames another address.
    assert _sign_in(member.email, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.1")[1].status_code == 429
    assert (
        _sign_in(member.email, PASSWORD, ip=OFFICE, HTTP_X_FORWARDED_FOR=HOME)[1].status_code == 302
    )


def test_trusted_proxy_hop_is_the_client_ip(member, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    # The client forged the first entry; the trusted proxy appended what it saw (HOME).
    _fail(member.email, 6, ip="10.0.0.2", HTTP_X_FORWARDED_FOR=f"{OFFICE}, {HOME}")
    assert set(AccessFailureLog.objects.values_list("ip_address", flat=True)) == {HOME}
    other = _sign_in(member.email, PASSWORD, ip="10.0.0.2", HTTP_X_FORWARDED_FOR=OFFICE)
    assert other[1].status_code == 302


def test_failed_sign_ins_reach_the_activity_log(member):
    _fail(member.email, 2)
    assert ActivityLog.objects.filter(action="sign_in_failed", actor=member).count() == 2


def test_staff_can_unlock_in_the_staff_admin(member, staff_client):
    _fail(member.email, 6)
    attempt = AccessAttempt.objects.get()
    page = staff_client.get("/staff/axes/accessattempt/")
    assert page.status_code == 200 and member.email in page.content.decode()
    staff_client.post(f"/staff/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert not AccessAttempt.objects.exists()
    assert _sign_in(member.email, PASSWORD)[1].status_code == 302
