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


def _pending(enterprise, count: int, *, start: int = 0, invited_by=None) -> list[Invitation]:
    """Invitations expiring one hour apart: #0 first."""
    now = timezone.now()
    return Invitation.objects.bulk_create(
        Invitation(
            enterprise=enterprise,
            email=f"inv{n:03d}@acme.test",
            token_digest=f"{n:064d}",
            invited_by=invited_by,
            expires_at=now + dt.timedelta(days=1, hours=n),
        )
        for n in range(start, start + count)
    )


def _listed(body: str) -> list[str]:
    section = body[body.index('id="pending-invitations"') :]
    return re.findall(r"<td>(inv\d+@acme\.test)</td>", section)


def test_pending_invitations_are_paged_soonest_to_expire_first(org_admin_client, enterprise):
    _pending(enterprise, 25)

    first = org_admin_client.get("/org/users/").content.decode()
    third = org_admin_client.get("/org/users/", {"invitations": 3}).content.decode()

    assert _listed(first) == [f"inv{n:03d}@acme.test" for n in range(10)]
    assert "1–10 of 25" in first and "invitations=2#pending-invitations" in first
    assert _listed(third) == [f"inv{n:03d}@acme.test" for n in range(20, 25)]
    assert "21–25 of 25" in third


@pytest.mark.parametrize("page", ["abc", "-1", "0", "99999", "1e9"])
def test_hostile_invitation_page_numbers_give_a_page(org_admin_client, enterprise, page):
    _pending(enterprise, 15)
    response = org_admin_client.get("/org/users/", {"invitations": page})
    assert response.status_code == 200
    assert len(_listed(response.content.decode())) in (10, 5)


def test_users_page_cost_does_not_grow_with_pending_invitations(
    org_admin_client, enterprise, org_admin, django_assert_max_num_queries
):
    _pending(enterprise, 3, invited_by=org_admin)
    with django_assert_max_num_queries(50) as few:
        org_admin_client.get("/org/users/")
    _pending(enterprise, 300, start=3, invited_by=org_admin)
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = org_admin_client.get("/org/users/").content.decode()
    assert len(_listed(body)) == 10 and "of 303" in body


def test_another_enterprises_invitations_are_not_listed(org_admin_client, other_enterprise):
    _pending(other_enterprise, 3)
    body = org_admin_client.get("/org/users/").content.decode()
    assert _listed(body) == [] and "No pending invitations." in body


def test_no_pending_invitations_reads_no_page(org_admin_client, other_enterprise):
    """The count answers an empty list: no page queryset is built, even for a hostile
    page number (the ORM compiles an empty slice before it knows it is empty)."""
    _pending(other_enterprise, 3)
    for page in (None, "2", "abc"):
        response = org_admin_client.get("/org/users/", {"invitations": page} if page else {})
        invitations = response.context["invitations"]
        assert invitations.object_list == [] and invitations.paginator.count == 0
        assert invitations.number == 1 and "No pending invitations." in response.content.decode()
