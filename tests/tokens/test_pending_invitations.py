"""Pending invitations on the Users page: admins resend or revoke them, auditors only read."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.test import Client, TestCase
from django.utils import timezone

from asksage_admin.core.errors import Refused
from tests.tokens.helpers import buy, logs
from tokens.invitations import resend_invitation, revoke_invitation
from tokens.models import Invitation

pytestmark = pytest.mark.django_db
NOT_VALID = "not valid or has expired"


@pytest.fixture
def room(enterprise):
    buy(enterprise, 2_000_000)
    return enterprise


def _invite(client, email: str = "newbie@acme.test") -> tuple[Invitation, str]:
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post("/org/users/add/", {"email": email})
    link = re.search(r"http://testserver(/invitations/\S+/)", mail.outbox[-1].body)[1]
    return Invitation.objects.get(email=email, expires_at__gt=timezone.now()), link


def _post(client, invitation: Invitation, what: str):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(f"/org/invitations/{invitation.pk}/{what}/", follow=True)


def test_users_page_lists_pending_invitations_with_inviter(org_admin_client, room, org_admin):
    invitation, _ = _invite(org_admin_client)
    body = org_admin_client.get("/org/users/").content.decode()
    section = body[body.index('id="pending-invitations"') :]
    assert "newbie@acme.test" in section and org_admin.email in section
    assert f'action="/org/invitations/{invitation.pk}/resend/"' in section
    assert f'action="/org/invitations/{invitation.pk}/revoke/"' in section


def test_accepted_and_expired_invitations_are_not_listed(org_admin_client, room):
    invitation, _ = _invite(org_admin_client)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now())
    body = org_admin_client.get("/org/users/").content.decode()
    assert "No pending invitations." in body


def test_resend_mails_a_new_link_and_the_old_one_stops_working(org_admin_client, room, org_admin):
    invitation, old_link = _invite(org_admin_client)
    response = _post(org_admin_client, invitation, "resend")
    assert "New invitation sent to newbie@acme.test" in response.content.decode()
    new_link = re.search(r"http://testserver(/invitations/\S+/)", mail.outbox[-1].body)[1]
    assert new_link != old_link and len(mail.outbox) == 2
    assert NOT_VALID in Client().get(old_link).content.decode()
    assert NOT_VALID not in Client().get(new_link, follow=True).content.decode()
    (log,) = logs("invitation_resent")
    assert (log.actor, log.enterprise, log.target) == (org_admin, room, "newbie@acme.test")


def test_revoke_stops_the_link_and_is_logged(org_admin_client, room, org_admin):
    invitation, link = _invite(org_admin_client)
    response = _post(org_admin_client, invitation, "revoke")
    assert "Invitation to newbie@acme.test revoked" in response.content.decode()
    assert NOT_VALID in Client().get(link).content.decode()
    assert len(mail.outbox) == 1
    (log,) = logs("invitation_revoked")
    assert (log.actor, log.enterprise, log.target) == (org_admin, room, "newbie@acme.test")


def test_revoked_invitation_cannot_be_resent(org_admin_client, room, org_admin):
    invitation, _ = _invite(org_admin_client)
    revoke_invitation(actor=org_admin, invitation=invitation)
    with pytest.raises(Refused, match="expired or was revoked"):
        resend_invitation(actor=org_admin, invitation=invitation, link_for=lambda t: t)
    assert logs("invitation_resent") == []


def test_accepted_invitation_cannot_be_revoked(org_admin_client, room, org_admin):
    invitation, _ = _invite(org_admin_client)
    Invitation.objects.filter(pk=invitation.pk).update(accepted_at=timezone.now())
    response = _post(org_admin_client, invitation, "revoke")
    assert "already accepted" in response.content.decode()
    assert logs("invitation_revoked") == []


def test_auditor_sees_the_list_read_only_and_cannot_write(org_admin_client, auditor_client, room):
    invitation, _ = _invite(org_admin_client)
    body = auditor_client.get("/org/users/").content.decode()
    assert "newbie@acme.test" in body
    assert "/resend/" not in body and "/revoke/" not in body
    assert auditor_client.post(f"/org/invitations/{invitation.pk}/revoke/").status_code == 403
    assert auditor_client.post(f"/org/invitations/{invitation.pk}/resend/").status_code == 403
    assert logs("invitation_revoked") == [] and logs("invitation_resent") == []


def test_other_enterprise_invitation_is_404(org_admin_client, other_admin_client, room):
    invitation, _ = _invite(org_admin_client)
    assert other_admin_client.post(f"/org/invitations/{invitation.pk}/revoke/").status_code == 404
    assert other_admin_client.post(f"/org/invitations/{invitation.pk}/resend/").status_code == 404
    assert "newbie@acme.test" not in other_admin_client.get("/org/users/").content.decode()
    assert Invitation.objects.get(pk=invitation.pk).expires_at > timezone.now()


def test_resend_gives_a_full_lifetime_again(org_admin_client, room, org_admin):
    invitation, _ = _invite(org_admin_client)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() + dt.timedelta(hours=1)
    )
    resent = resend_invitation(actor=org_admin, invitation=invitation, link_for=lambda t: t)
    assert resent.expires_at > timezone.now() + dt.timedelta(days=6)


def test_resend_and_revoke_need_post(org_admin_client, room):
    invitation, _ = _invite(org_admin_client)
    assert org_admin_client.get(f"/org/invitations/{invitation.pk}/revoke/").status_code == 405
