"""Joining from the console needs consent: an invitation by mail, accepted through its link.

Registered or not, in another organization or staff: the admin sees the same words, and only
an address that can join gets a working invitation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from django.core import mail
from django.test import Client, TestCase
from django.utils import timezone

from accounts.models import User
from asksage_admin.core.errors import Refused
from tests import factories
from tests.tokens.helpers import MIN, buy, logs
from tokens.invitations import accept_invitation
from tokens.models import Invitation

pytestmark = pytest.mark.django_db
PASSWORD = "Another-Long-Passphrase-42"
SENT = "Invitation sent to {email}. They join Acme Corp when they accept it."


@pytest.fixture
def room(enterprise):
    buy(enterprise, 2_000_000)
    return enterprise


def _invite(client, email: str = "newbie@acme.test") -> str:
    """Invite `email` through the console and return the link path from the email."""
    with TestCase.captureOnCommitCallbacks(execute=True):  # the mail leaves after commit
        response = client.post("/org/users/add/", {"email": email}, follow=True)
    assert SENT.format(email=email.lower()) in response.content.decode()
    return re.search(r"http://testserver(/invitations/\S+/)", mail.outbox[-1].body)[1]


def _register(email: str, client: Client | None = None) -> Client:
    """Register, then open the confirmation link mailed to the address (which signs in)."""
    client = client or Client()
    data = {"email": email, "full_name": "", "password1": PASSWORD, "password2": PASSWORD}
    assert client.post("/accounts/register/", data).status_code == 302
    confirm = re.search(r"http://testserver(/accounts/confirm/\S+)", mail.outbox[-1].body)[1]
    assert client.get(confirm).status_code == 302
    return client


def _signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_unknown_email_gets_an_invitation_mail(org_admin_client, room, org_admin):
    _invite(org_admin_client)
    (message,) = mail.outbox
    assert message.to == ["newbie@acme.test"]
    assert room.name in message.subject
    (log,) = logs("user_invited")
    assert (log.actor, log.enterprise, log.target) == (org_admin, room, "newbie@acme.test")


def test_only_a_digest_of_the_link_token_is_stored(org_admin_client, room):
    token = _invite(org_admin_client).split("/")[2]
    invitation = Invitation.objects.get()
    assert invitation.token_digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(Invitation.objects.values().get())
    assert token not in str(logs("user_invited")[0].new_value)


def test_registered_person_does_not_join_until_they_accept(org_admin_client, room, org_admin):
    person = factories.make_user("New@Elsewhere.test")
    link = _invite(org_admin_client, "New@Elsewhere.test")
    person.refresh_from_db()
    assert person.enterprise is None and logs("user_added") == []

    client = _signed_in(person)
    assert "Accept and join" in client.get(link).content.decode()
    response = client.post(link, {"decision": "accept"}, follow=True)

    assert "You joined Acme Corp." in response.content.decode()
    person.refresh_from_db()
    assert (person.enterprise, person.status, person.max_inference_tokens) == (room, "paid", MIN)
    (log,) = logs("user_added")
    assert (log.actor, log.new_value["via"]) == (person, "invitation")


def test_new_person_registers_then_accepts(org_admin_client, room):
    link = _invite(org_admin_client)
    anonymous = Client().get(link).content.decode()
    assert "Acme Corp" in anonymous and "Create one" in anonymous
    client = _register("newbie@acme.test")
    client.post(link, {"decision": "accept"})
    user = User.objects.get(email="newbie@acme.test")
    assert (user.enterprise, user.status, user.max_inference_tokens) == (room, "paid", MIN)
    assert Invitation.objects.get().accepted_at is not None


def test_registration_keeps_the_invitation_as_next(org_admin_client, room):
    link = _invite(org_admin_client)
    page = Client().get(f"/accounts/register/?next={link}&email=newbie@acme.test")
    assert 'value="newbie@acme.test"' in page.content.decode()
    data = {"email": "newbie@acme.test", "password1": PASSWORD, "password2": PASSWORD}
    client = Client()
    response = client.post(f"/accounts/register/?next={link}", {**data, "next": link})
    # The invitation link was mailed to this address: it is proven, no confirmation mail.
    assert response["Location"] == link
    assert "_auth_user_id" in client.session


def test_registering_from_an_invitation_as_another_address_needs_confirmation(
    org_admin_client, room
):
    link = _invite(org_admin_client)
    data = {"email": "other@acme.test", "password1": PASSWORD, "password2": PASSWORD}
    client = Client()
    response = client.post(f"/accounts/register/?next={link}", {**data, "next": link})
    assert response["Location"] == "/accounts/register/sent/"
    assert "_auth_user_id" not in client.session
    assert User.objects.get(email="other@acme.test").email_confirmed is False


def test_declining_spends_the_link_and_is_logged(org_admin_client, room):
    person = factories.make_user("new@elsewhere.test")
    link = _invite(org_admin_client, person.email)
    client = _signed_in(person)
    client.post(link, {"decision": "decline"})
    person.refresh_from_db()
    assert person.enterprise is None
    (log,) = logs("invitation_declined")
    assert (log.enterprise, log.target) == (room, person.email)
    assert "not valid or has expired" in client.get(link).content.decode()


def test_link_works_only_once(org_admin_client, room):
    link = _invite(org_admin_client)
    client = _register("newbie@acme.test")
    client.post(link, {"decision": "accept"})
    again = client.post(link, {"decision": "accept"}, follow=True).content.decode()
    assert "not valid or has expired" in again
    assert len(logs("user_added")) == 1


def test_expired_link_does_not_join(org_admin_client, room):
    link = _invite(org_admin_client)
    Invitation.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    client = _register("newbie@acme.test")
    response = client.post(link, {"decision": "accept"}, follow=True)
    assert "not valid or has expired" in response.content.decode()
    assert User.objects.get(email="newbie@acme.test").enterprise is None


def test_link_is_for_the_invited_address_only(org_admin_client, room):
    link = _invite(org_admin_client)
    client = _register("intruder@evil.test")
    assert "was sent to newbie@acme.test" in client.get(link).content.decode()
    response = client.post(link, {"decision": "accept"}, follow=True)
    assert "was sent to newbie@acme.test" in response.content.decode()
    assert User.objects.get(email="intruder@evil.test").enterprise is None
    assert Invitation.objects.get().accepted_at is None


def test_a_new_invitation_replaces_the_old_link(org_admin_client, room):
    first = _invite(org_admin_client)
    second = _invite(org_admin_client)
    assert "not valid or has expired" in Client().get(first).content.decode()
    assert Invitation.objects.filter(expires_at__gt=timezone.now()).count() == 1
    assert second != first


def test_invitation_when_pool_is_short_is_refused(org_admin_client, enterprise):
    buy(enterprise, 100_000)
    response = org_admin_client.post("/org/users/add/", {"email": "newbie@acme.test"})
    assert "only 100,000 are unassigned" in response.content.decode()
    assert mail.outbox == [] and Invitation.objects.count() == 0


def test_bogus_link_is_reported(db):
    response = Client().get("/invitations/not-a-real-token/")
    assert "not valid or has expired" in response.content.decode()


@pytest.mark.parametrize("who", ["staff", "superuser", "other_enterprise"])
def test_people_who_cannot_join_see_the_same_answer_and_get_nothing(
    org_admin_client, room, other_admin, who
):
    """The admin's page reads the same; no invitation exists; nobody is attached."""
    person = {
        "staff": lambda: factories.make_user("sales@asksage.test", is_staff=True),
        "superuser": lambda: factories.make_user("ops@asksage.test", is_superuser=True),
        "other_enterprise": lambda: other_admin,
    }[who]()
    before = person.enterprise_id
    response = org_admin_client.post("/org/users/add/", {"email": person.email}, follow=True)
    assert SENT.format(email=person.email) in response.content.decode()
    person.refresh_from_db()
    assert person.enterprise_id == before
    assert Invitation.objects.count() == 0 and mail.outbox == []


def test_staff_account_cannot_accept_even_a_real_invitation(org_admin_client, room):
    link = _invite(org_admin_client, "later.staff@acme.test")
    person = factories.make_user("later.staff@acme.test", is_staff=True)
    with pytest.raises(Refused, match="staff account"):
        accept_invitation(user=person, token=link.split("/")[2])
    person.refresh_from_db()
    assert person.enterprise is None


def test_invitation_mail_leaves_only_after_commit(
    org_admin, room, django_capture_on_commit_callbacks
):
    from tokens.invitations import add_user

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        add_user(actor=org_admin, enterprise=room, email="x@acme.test", link_for=str)
    assert mail.outbox == [] and len(callbacks) == 1
    callbacks[0]()
    assert mail.outbox[0].to == ["x@acme.test"]
