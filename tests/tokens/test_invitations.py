"""Inviting an unknown email: a link by mail; signing up through it joins the enterprise."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import Invitation, User
from tests.tokens.helpers import MIN, buy, logs

pytestmark = pytest.mark.django_db
PASSWORD = "Another-Long-Passphrase-42"


@pytest.fixture
def room(enterprise):
    buy(enterprise, 2_000_000)
    return enterprise


def _invite(client, email: str = "newbie@acme.test") -> str:
    """Invite `email` through the console and return the sign-up link from the email."""
    response = client.post("/org/users/add/", {"email": email})
    assert response.status_code == 302
    return re.search(r"http://testserver(/accounts/register/\?invite=\S+)", mail.outbox[-1].body)[1]


def _register(link: str, email: str = "newbie@acme.test", client: Client | None = None):
    client = client or Client()
    data = {"email": email, "full_name": "", "password1": PASSWORD, "password2": PASSWORD}
    return client.post(link, data, follow=True)


def test_unknown_email_gets_an_invitation_mail(org_admin_client, room, org_admin):
    _invite(org_admin_client)
    (message,) = mail.outbox
    assert message.to == ["newbie@acme.test"]
    assert room.name in message.subject
    (log,) = logs("user_invited")
    assert (log.actor, log.enterprise, log.target) == (org_admin, room, "newbie@acme.test")


def test_only_a_digest_of_the_link_token_is_stored(org_admin_client, room):
    token = _invite(org_admin_client).split("invite=")[1]
    invitation = Invitation.objects.get()
    assert invitation.token_digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(Invitation.objects.values().get())
    assert token not in str(logs("user_invited")[0].new_value)


def test_signing_up_through_the_link_joins_the_enterprise(org_admin_client, room):
    link = _invite(org_admin_client)
    assert "newbie@acme.test" in Client().get(link).content.decode()  # the form is prefilled
    response = _register(link)
    assert "You joined Acme Corp." in response.content.decode()
    user = User.objects.get(email="newbie@acme.test")
    assert (user.enterprise, user.status, user.max_inference_tokens) == (room, "paid", MIN)
    assert Invitation.objects.get().accepted_at is not None
    (log,) = logs("user_added")
    assert (log.actor, log.new_value["via"]) == (user, "invitation")


def test_link_works_only_once(org_admin_client, room):
    link = _invite(org_admin_client)
    _register(link)
    response = _register(link, email="someone.else@acme.test")
    assert "not valid or has expired" in response.content.decode()
    assert User.objects.get(email="someone.else@acme.test").enterprise is None


def test_expired_link_does_not_join(org_admin_client, room):
    link = _invite(org_admin_client)
    Invitation.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = _register(link)
    assert "not valid or has expired" in response.content.decode()
    assert User.objects.get(email="newbie@acme.test").enterprise is None


def test_link_is_for_the_invited_address_only(org_admin_client, room):
    link = _invite(org_admin_client)
    response = _register(link, email="intruder@evil.test")
    assert "was sent to newbie@acme.test" in response.content.decode()
    assert User.objects.get(email="intruder@evil.test").enterprise is None
    assert Invitation.objects.get().accepted_at is None


def test_a_new_invitation_replaces_the_old_link(org_admin_client, room):
    first = _invite(org_admin_client)
    second = _invite(org_admin_client)
    assert "not valid or has expired" in _register(first).content.decode()
    assert Invitation.objects.filter(expires_at__gt=timezone.now()).count() == 1
    assert second != first


def test_invitation_when_pool_is_short_is_refused(org_admin_client, enterprise):
    buy(enterprise, 100_000)
    response = org_admin_client.post("/org/users/add/", {"email": "newbie@acme.test"})
    assert "only 100,000 are unassigned" in response.content.decode()
    assert mail.outbox == [] and Invitation.objects.count() == 0


def test_bogus_invite_parameter_is_reported(db):
    response = Client().get("/accounts/register/?invite=not-a-real-token")
    assert "not valid or has expired" in response.content.decode()
