"""Registration at /accounts/register/: good input creates a member, bad input nothing."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client

from accounts.models import User
from asksage_admin.core.models import ActivityLog
from tests import factories

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "Violet-Kettle-Harbour-42"


def _register(client: Client | None = None, **overrides):
    data = {
        "email": "new.person@example.com",
        "full_name": "New Person",
        "password1": GOOD_PASSWORD,
        "password2": GOOD_PASSWORD,
    }
    data.update(overrides)
    return (client or Client()).post("/accounts/register/", data)


def _assert_refused(response, message: str) -> None:
    assert response.status_code == 200
    assert message in response.content.decode()


def test_register_page_renders(db):
    body = Client().get("/accounts/register/").content.decode()
    assert 'name="email"' in body and 'name="password1"' in body


def test_registration_creates_a_member_without_enterprise(db):
    _register()
    user = User.objects.get()
    assert (user.email, user.full_name) == ("new.person@example.com", "New Person")
    assert (user.role, user.status, user.enterprise) == ("member", "paid", None)
    assert user.check_password(GOOD_PASSWORD)


def _confirmation_link() -> str:
    return re.search(r"http://testserver(/accounts/confirm/\S+)", mail.outbox[-1].body)[1]


def test_registration_does_not_sign_in_before_the_address_is_confirmed(db):
    client = Client()
    response = _register(client)
    assert response["Location"] == "/accounts/register/sent/"
    assert SESSION_KEY not in client.session
    assert User.objects.get().email_confirmed is False
    assert mail.outbox[-1].to == ["new.person@example.com"]


def test_confirmation_link_confirms_and_signs_in(db):
    _register()
    client = Client()
    response = client.get(_confirmation_link())
    assert response.status_code == 302 and response["Location"] == "/settings/"
    user = User.objects.get()
    assert user.email_confirmed is True
    assert client.session[SESSION_KEY] == str(user.pk)


def test_confirmation_link_works_once(db):
    _register()
    link = _confirmation_link()
    Client().get(link)
    assert Client().get(link).status_code == 400


def test_tampered_confirmation_link_is_refused(db):
    _register()
    link = _confirmation_link()
    assert Client().get(link.replace("/confirm/", "/confirm/x")).status_code == 400
    assert User.objects.get().email_confirmed is False


def test_unconfirmed_account_cannot_sign_in_and_gets_a_new_link(db):
    _register()
    mail.outbox.clear()
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": "new.person@example.com", "password": GOOD_PASSWORD}
    )
    assert SESSION_KEY not in client.session
    assert "Confirm your email address first" in response.content.decode()
    assert len(mail.outbox) == 1 and "/accounts/confirm/" in mail.outbox[0].body


def test_unconfirmed_account_with_a_wrong_password_learns_nothing(db):
    _register()
    mail.outbox.clear()
    response = Client().post(
        "/accounts/login/", {"username": "new.person@example.com", "password": "Wrong-Pass-1234"}
    )
    assert "do not match an active account" in response.content.decode()
    assert not mail.outbox


def test_registration_stores_the_email_in_lower_case(db):
    _register(email="New.Person@Example.COM")
    assert User.objects.get().email == "new.person@example.com"


def test_registration_logs_registered(db):
    _register(client=Client(REMOTE_ADDR="192.0.2.4"))
    log = ActivityLog.objects.get()
    assert (log.action, log.actor.email, log.target) == (
        "registered",
        "new.person@example.com",
        "new.person@example.com",
    )
    assert log.ip_address == "192.0.2.4"


def test_registered_member_can_sign_in_once_confirmed(db):
    _register()
    Client().get(_confirmation_link())
    client = Client()
    client.post(
        "/accounts/login/", {"username": "new.person@example.com", "password": GOOD_PASSWORD}
    )
    assert SESSION_KEY in client.session


def test_taken_email_gets_the_same_answer_as_a_new_one(db):
    new = _register(email="fresh@example.org")
    factories.make_user("ann@example.org")
    taken = _register(email="ANN@Example.org")
    assert (taken.status_code, taken["Location"]) == (new.status_code, new["Location"])
    page = Client().get(taken["Location"]).content.decode()
    assert "already exists" not in page
    assert User.objects.filter(email__iexact="ann@example.org").count() == 1


def test_taken_email_tells_the_owner_someone_tried(db):
    owner = factories.make_user("ann@example.org")
    _register(
        email="ann@example.org", password1="Other-Long-Pass-77", password2="Other-Long-Pass-77"
    )
    (message,) = mail.outbox
    assert message.to == ["ann@example.org"] and "tried to register" in message.subject
    owner.refresh_from_db()
    assert owner.check_password(factories.PASSWORD)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("full_name", "Ann\x00Smith"),
        ("full_name", "Ann\tSmith"),
        ("full_name", "Ann\nSmith"),
        ("full_name", "Ann\u202eSmith"),
        ("full_name", "Ann Smith\r"),
        ("email", "ann\x07@example.org"),
    ],
    ids=["nul", "tab", "newline", "bidi-override", "trailing-cr", "bell-in-email"],
)
def test_control_characters_are_refused(field, value, db):
    response = _register(**{field: value})
    assert response.status_code == 200
    assert 'class="error"' in response.content.decode()
    assert not User.objects.exists()
    assert not mail.outbox


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Sh0rt-pw", "at least 10 characters"),
        ("password123", "too common"),
        ("73920584619", "entirely numeric"),
        ("new.person.example", "too similar"),
    ],
    ids=["too-short", "common", "numeric", "like-the-email"],
)
def test_weak_password_is_refused(password, message, db):
    response = _register(password1=password, password2=password)
    _assert_refused(response, message)
    assert not User.objects.exists()
    assert not ActivityLog.objects.exists()


@pytest.mark.parametrize(
    "email", ["not-an-email", "a@b", "two@@example.com", "spaces in@example.com", ""]
)
def test_malformed_email_is_refused(email, db):
    response = _register(email=email)
    assert response.status_code == 200
    assert 'class="error"' in response.content.decode()
    assert not User.objects.exists()
    assert not ActivityLog.objects.exists()


def test_malformed_email_says_what_is_wrong(db):
    _assert_refused(_register(email="not-an-email"), "Enter a valid email address.")


def test_mismatched_passwords_are_refused(db):
    response = _register(password2=GOOD_PASSWORD + "x")
    _assert_refused(response, "The two password fields didn’t match.")
    assert not User.objects.exists()


def test_overlong_full_name_is_refused(db):
    response = _register(full_name="x" * 151)
    _assert_refused(response, "at most 150 characters")
    assert not User.objects.exists()


def test_registration_cannot_set_role_enterprise_or_staff(enterprise):
    _register(role="admin", enterprise=enterprise.pk, is_staff="on", is_superuser="on")
    user = User.objects.get(email="new.person@example.com")
    assert (user.role, user.enterprise, user.is_staff, user.is_superuser) == (
        "member",
        None,
        False,
        False,
    )


def test_register_page_has_no_usable_password_switch(db):
    """Django's admin-only 'password-based authentication' toggle must not leak in."""
    assert "usable_password" not in Client().get("/accounts/register/").content.decode()


def test_seeded_demo_accounts_are_confirmed_and_can_sign_in(db):
    from io import StringIO

    from django.core.management import call_command

    call_command("seed_demo", "--password", GOOD_PASSWORD, stdout=StringIO())
    assert not User.objects.filter(email_confirmed=False).exists()
    member = User.objects.filter(role="member").exclude(enterprise=None).first()
    client = Client()
    client.post("/accounts/login/", {"username": member.email, "password": GOOD_PASSWORD})
    assert client.session[SESSION_KEY] == str(member.pk)


def test_confirmation_link_expires(db, settings):
    from datetime import datetime, timedelta
    from unittest import mock

    from accounts.services import EmailConfirmationTokens

    _register()
    link = _confirmation_link()
    later = datetime.now() + timedelta(seconds=settings.EMAIL_CONFIRMATION_TIMEOUT + 60)
    with mock.patch.object(EmailConfirmationTokens, "_now", return_value=later):
        assert Client().get(link).status_code == 400
    assert User.objects.get().email_confirmed is False
