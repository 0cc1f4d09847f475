"""Sign-in and sign-out: email in any case, audit rows, POST-only sign-out, bans."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from accounts.models import User
from asksage_admin.core.models import ActivityLog
from tests import factories
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def _sign_in(client: Client, email: str, password: str = PASSWORD, **extra):
    return client.post("/accounts/login/", {"username": email, "password": password, **extra})


def test_login_page_renders():
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert 'name="username"' in response.content.decode()


def test_member_signs_in_and_lands_on_settings(member):
    client = Client()
    response = _sign_in(client, member.email)
    assert response.status_code == 302
    assert response["Location"] == "/settings/"
    assert client.session[SESSION_KEY] == str(member.pk)


def test_email_is_case_insensitive_at_sign_in(member):
    client = Client()
    response = _sign_in(client, "Member@ACME.test")
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(member.pk)


def test_sign_in_logs_sign_in_with_ip_and_request_id(member):
    client = Client(HTTP_X_REQUEST_ID="req-abc-123", REMOTE_ADDR="203.0.113.9")
    _sign_in(client, member.email)
    log = ActivityLog.objects.get()
    assert (log.action, log.actor, log.actor_email) == ("sign_in", member, member.email)
    assert log.enterprise == member.enterprise
    assert log.ip_address == "203.0.113.9"
    assert log.request_id == "req-abc-123"


def test_sign_in_generates_a_request_id_when_none_is_given(member):
    response = _sign_in(Client(), member.email)
    log = ActivityLog.objects.get()
    assert len(log.request_id) == 32
    assert response["X-Request-ID"] == log.request_id


def test_sign_in_ignores_a_malformed_request_id(member):
    _sign_in(Client(HTTP_X_REQUEST_ID="<script>alert(1)</script>"), member.email)
    assert "<" not in ActivityLog.objects.get().request_id


def test_wrong_password_is_refused(member):
    client = Client()
    response = _sign_in(client, member.email, "not-the-password")
    assert response.status_code == 200
    assert "do not match an active account" in response.content.decode()
    assert SESSION_KEY not in client.session


def test_failed_sign_in_logs_sign_in_failed(member):
    _sign_in(Client(REMOTE_ADDR="198.51.100.7"), "MEMBER@acme.test", "not-the-password")
    log = ActivityLog.objects.get()
    assert (log.action, log.actor, log.actor_email) == ("sign_in_failed", member, member.email)
    assert log.ip_address == "198.51.100.7"
    assert log.request_id


def test_failed_sign_in_changes_nothing_else(member):
    before = User.objects.values().get(pk=member.pk)
    _sign_in(Client(), member.email, "not-the-password")
    assert User.objects.values().get(pk=member.pk) == before
    assert list(ActivityLog.objects.values_list("action", flat=True)) == ["sign_in_failed"]


def test_failed_sign_in_for_unknown_email_logs_the_attempted_email(db):
    _sign_in(Client(), "nobody@example.com", "whatever-password")
    log = ActivityLog.objects.get()
    assert (log.action, log.actor, log.actor_email) == (
        "sign_in_failed",
        None,
        "nobody@example.com",
    )
    assert User.objects.count() == 0


def test_unknown_email_and_wrong_password_give_the_same_message(member):
    unknown = _sign_in(Client(), "nobody@example.com", "not-the-password").content.decode()
    wrong = _sign_in(Client(), member.email, "not-the-password").content.decode()
    message = "That email and password do not match an active account."
    assert message in unknown and message in wrong


def test_banned_user_cannot_sign_in(member):
    member.status = User.Status.BANNED
    member.save()
    client = Client()
    response = _sign_in(client, member.email)
    assert response.status_code == 200
    assert SESSION_KEY not in client.session
    assert list(ActivityLog.objects.values_list("action", flat=True)) == ["sign_in_failed"]


def test_deactivated_user_cannot_sign_in(member):
    member.is_active = False
    member.save()
    client = Client()
    _sign_in(client, member.email)
    assert SESSION_KEY not in client.session


def test_signed_in_user_who_gets_banned_is_signed_out_on_next_request(member, member_client):
    assert member_client.get("/settings/").status_code == 200
    User.objects.filter(pk=member.pk).update(status=User.Status.BANNED)
    response = member_client.get("/settings/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert SESSION_KEY not in member_client.session


def test_lifting_a_ban_does_not_revive_the_old_session(member, member_client):
    User.objects.filter(pk=member.pk).update(status=User.Status.BANNED)
    member_client.get("/settings/")
    User.objects.filter(pk=member.pk).update(status=User.Status.PAID)
    assert member_client.get("/settings/").status_code == 302


def test_admin_sign_in_goes_to_mfa_setup_keeping_next(org_admin):
    response = _sign_in(Client(), org_admin.email, next="/org/")
    assert response.status_code == 302
    assert response["Location"] == "/mfa/setup/?next=%2Forg%2F"


def test_admin_with_device_sign_in_goes_to_verify(org_admin):
    factories.make_totp_device(org_admin)
    response = _sign_in(Client(), org_admin.email)
    assert response["Location"] == "/mfa/verify/?next=%2Forg%2F"


def test_sign_in_ignores_next_to_another_site(member):
    response = _sign_in(Client(), member.email, next="https://evil.example/")
    assert response["Location"] == "/settings/"


def test_sign_in_rotates_the_session_key(member):
    client = Client()
    client.get("/accounts/login/")
    session = client.session
    session["probe"] = 1
    session.save()
    before = session.session_key
    _sign_in(client, member.email)
    assert client.session.session_key != before


def test_sign_out_by_get_is_refused(member_client, member):
    response = member_client.get("/accounts/logout/")
    assert response.status_code == 405
    assert member_client.session[SESSION_KEY] == str(member.pk)
    assert not ActivityLog.objects.exists()


def test_sign_out_by_post_ends_the_session(member_client):
    response = member_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert SESSION_KEY not in member_client.session
    assert member_client.get("/settings/").status_code == 302


def test_sign_out_logs_sign_out(member_client, member):
    member_client.post("/accounts/logout/")
    log = ActivityLog.objects.get()
    assert (log.action, log.actor) == ("sign_out", member)
    assert log.ip_address == "127.0.0.1"


def test_anonymous_sign_out_logs_nothing(db):
    response = Client().post("/accounts/logout/")
    assert response.status_code == 302
    assert not ActivityLog.objects.exists()


def test_sign_out_needs_the_csrf_token(member_client, member):
    client = Client(enforce_csrf_checks=True)
    client.cookies = member_client.cookies
    response = client.post("/accounts/logout/")
    assert response.status_code == 403
    assert client.session[SESSION_KEY] == str(member.pk)


def test_failed_sign_in_with_a_nul_byte_is_refused_cleanly(db):
    """PostgreSQL text cannot hold NUL: the audit row must not turn bad input into a 500."""
    response = _sign_in(Client(), "evil\x00@example.com", "whatever-password")
    assert response.status_code == 200
    assert ActivityLog.objects.get().actor_email == "evil@example.com"
