"""A disabled (Banned) person who knows their password learns why they cannot sign in."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from accounts.models import User
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
DISABLED = "Your account has been disabled by your organization's administrator."
NO_MATCH = "That email and password do not match an active account."


def _sign_in(email: str, password: str = PASSWORD) -> tuple[Client, str, int]:
    client = Client(REMOTE_ADDR="198.51.100.7")
    response = client.post("/accounts/login/", {"username": email, "password": password})
    return client, html.unescape(response.content.decode()), response.status_code


@pytest.fixture
def banned(member) -> User:
    User.objects.filter(pk=member.pk).update(status=User.Status.BANNED)
    return member


def test_banned_user_with_right_password_is_told_they_are_disabled(banned):
    client, body, status = _sign_in(banned.email)
    assert status == 200
    assert DISABLED in body
    assert SESSION_KEY not in client.session


def test_banned_user_with_wrong_password_sees_the_usual_words(banned):
    _, body, _ = _sign_in(banned.email, "Wrong-Password-1")
    assert DISABLED not in body
    assert NO_MATCH in body


def test_unknown_email_sees_the_usual_words(db):
    _, body, _ = _sign_in("nobody@acme.test")
    assert DISABLED not in body
    assert NO_MATCH in body


def test_banned_right_password_still_counts_towards_the_lockout(banned):
    for _ in range(5):
        _sign_in(banned.email, "Wrong-Password-1")
    _, body, status = _sign_in(banned.email)
    assert status == 429
    assert DISABLED not in body
