"""Registration at /accounts/register/: good input creates a member, bad input nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
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


def test_registration_signs_the_new_user_in(db):
    client = Client()
    response = _register(client)
    assert response["Location"] == "/settings/"
    assert client.session[SESSION_KEY] == str(User.objects.get().pk)


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


def test_registered_member_can_sign_in(db):
    _register()
    client = Client()
    client.post(
        "/accounts/login/", {"username": "new.person@example.com", "password": GOOD_PASSWORD}
    )
    assert SESSION_KEY in client.session


def test_duplicate_email_in_other_case_is_refused(db):
    factories.make_user("ann@example.org")
    response = _register(email="ANN@Example.org")
    _assert_refused(response, "An account with this email address already exists.")
    assert User.objects.count() == 1
    assert not ActivityLog.objects.exists()


def test_duplicate_email_shows_one_clear_message(db):
    factories.make_user("ann@example.org")
    body = _register(email="ann@example.org").content.decode()
    assert body.count("already exists") == 1


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
