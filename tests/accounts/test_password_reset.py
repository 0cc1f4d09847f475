"""Password reset by email: a working one-time link; unknown addresses reveal nothing."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client

from accounts.models import User
from asksage_admin.core.models import ActivityLog
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Lantern-Orchard-Pebble-77"
LINK_RE = re.compile(r"http://testserver(/accounts/password-reset/[^/\s]+/[^/\s]+/)")


def _request_reset(email: str, client: Client | None = None):
    return (client or Client()).post("/accounts/password-reset/", {"email": email})


def _reset_link() -> str:
    (message,) = mail.outbox
    return LINK_RE.search(message.body).group(1)


def _set_new_password(client: Client, link: str, password: str = NEW_PASSWORD):
    form_url = client.get(link)["Location"]  # Django swaps the token for a session marker
    return client.post(form_url, {"new_password1": password, "new_password2": password})


def test_reset_sends_one_email_with_a_link(member):
    response = _request_reset(member.email)
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [member.email]
    assert mail.outbox[0].subject == "Reset your AskSage Admin password"
    assert _reset_link()


def test_reset_finds_the_account_whatever_the_case(member):
    _request_reset("MEMBER@Acme.Test")
    assert mail.outbox[0].to == [member.email]


def test_reset_link_sets_a_new_password(member):
    _request_reset(member.email)
    client = Client()
    response = _set_new_password(client, _reset_link())
    assert response["Location"] == "/accounts/password-reset/complete/"
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)
    assert not member.check_password(PASSWORD)


def test_new_password_signs_in(member):
    _request_reset(member.email)
    _set_new_password(Client(), _reset_link())
    client = Client()
    client.post("/accounts/login/", {"username": member.email, "password": NEW_PASSWORD})
    assert client.session[SESSION_KEY] == str(member.pk)


def test_reset_link_works_only_once(member):
    _request_reset(member.email)
    link = _reset_link()
    _set_new_password(Client(), link)
    response = Client().get(link, follow=True)
    assert "Link expired" in response.content.decode()


def test_reset_refuses_a_weak_new_password(member):
    _request_reset(member.email)
    response = _set_new_password(Client(), _reset_link(), "password123")
    assert response.status_code == 200
    assert "too common" in response.content.decode()
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


def test_tampered_link_is_refused(member):
    _request_reset(member.email)
    link = _reset_link()
    bad = link[:-3] + ("a" if link[-3] != "a" else "b") + link[-2:]
    response = Client().get(bad, follow=True)
    assert "Link expired" in response.content.decode()


def test_unknown_email_sends_nothing(db):
    _request_reset("nobody@example.com")
    assert mail.outbox == []


def test_unknown_email_looks_exactly_like_a_known_one(member):
    known = _request_reset(member.email)
    unknown = _request_reset("nobody@example.com")
    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])


def test_unknown_email_creates_nothing(db):
    _request_reset("nobody@example.com")
    assert not User.objects.exists()
    assert not ActivityLog.objects.filter(actor__isnull=False).exists()


def test_reset_of_a_deactivated_account_sends_nothing(member):
    member.is_active = False
    member.save()
    _request_reset(member.email)
    assert mail.outbox == []


def test_sent_page_does_not_name_the_address(db):
    response = _request_reset("nobody@example.com", Client())
    body = Client().get(response["Location"]).content.decode()
    assert "If an account uses that address" in body
    assert "nobody@example.com" not in body


def test_reset_logs_password_reset(member):
    _request_reset(member.email)
    _set_new_password(Client(REMOTE_ADDR="192.0.2.8"), _reset_link())
    log = ActivityLog.objects.get(action="password_reset")
    assert (log.actor, log.enterprise, log.ip_address) == (member, member.enterprise, "192.0.2.8")


def test_reset_signs_out_the_accounts_other_sessions(member, member_client):
    assert member_client.get("/settings/").status_code == 200
    _request_reset(member.email)
    _set_new_password(Client(), _reset_link())
    assert member_client.get("/settings/").status_code == 302


def test_reset_link_also_confirms_an_unconfirmed_address(member):
    User.objects.filter(pk=member.pk).update(email_confirmed=False)
    _request_reset(member.email)
    _set_new_password(Client(), _reset_link())
    member.refresh_from_db()
    assert member.email_confirmed is True
