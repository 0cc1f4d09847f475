"""Console user management: add, disable/activate, roles; the last admin stays."""

from __future__ import annotations

import pytest

from accounts.models import User
from tests import factories
from tests.tokens.helpers import MIN, buy, logs, reload

pytestmark = pytest.mark.django_db


@pytest.fixture
def room(enterprise):
    buy(enterprise, 2_000_000, 1_000_000)
    return enterprise


def test_add_registered_user_invites_and_does_not_attach(org_admin_client, room, org_admin):
    newcomer = factories.make_user("new@elsewhere.test")
    response = org_admin_client.post("/org/users/add/", {"email": "New@Elsewhere.test"})
    assert response.status_code == 302
    assert reload(newcomer).enterprise is None
    assert logs("user_added") == []
    (log,) = logs("user_invited")
    assert (log.actor, log.enterprise, log.target) == (org_admin, room, "new@elsewhere.test")


def test_add_user_when_pool_is_short_is_refused(org_admin_client, enterprise):
    buy(enterprise, 150_000)
    newcomer = factories.make_user("new@elsewhere.test")
    response = org_admin_client.post("/org/users/add/", {"email": newcomer.email})
    assert response.status_code == 200
    assert "only 150,000 are unassigned" in response.content.decode()
    assert reload(newcomer).enterprise is None
    assert logs("user_added") == []


def test_add_existing_member_is_refused(org_admin_client, room, member):
    response = org_admin_client.post("/org/users/add/", {"email": member.email})
    assert "already a user of" in response.content.decode()


def test_add_with_invalid_email_is_refused(org_admin_client, room):
    response = org_admin_client.post("/org/users/add/", {"email": "not-an-email"})
    assert response.status_code == 200
    assert logs("user_added") == [] and logs("user_invited") == []


def test_auditor_cannot_add_users(auditor_client, room):
    factories.make_user("new@elsewhere.test")
    assert (
        auditor_client.post("/org/users/add/", {"email": "new@elsewhere.test"}).status_code == 403
    )
    assert reload(User.objects.get(email="new@elsewhere.test")).enterprise is None


def test_disable_user_bans_and_logs(org_admin_client, member, org_admin):
    response = org_admin_client.post(f"/org/users/{member.pk}/status/", {"action": "disable"})
    assert response.status_code == 302
    assert reload(member).status == "banned"
    (log,) = logs("user_disabled")
    assert (log.actor, log.target, log.old_value, log.new_value) == (
        org_admin,
        member.email,
        {"status": "paid"},
        {"status": "banned"},
    )


def test_activate_banned_user_tops_up_to_the_minimum(org_admin_client, room):
    banned = factories.make_user(enterprise=room, status=User.Status.BANNED, inference=0)
    org_admin_client.post(f"/org/users/{banned.pk}/status/", {"action": "activate"})
    banned = reload(banned)
    assert (banned.status, banned.max_inference_tokens) == ("paid", MIN)
    assert logs("user_activated")[0].new_value == {"status": "paid"}
    assert logs("allocation_changed")[0].new_value == {"max_inference_tokens": MIN}


def test_activate_banned_user_without_room_is_refused(org_admin_client, enterprise):
    banned = factories.make_user(enterprise=enterprise, status=User.Status.BANNED, inference=0)
    response = org_admin_client.post(
        f"/org/users/{banned.pk}/status/", {"action": "activate"}, follow=True
    )
    assert "only 0 are unassigned" in response.content.decode()
    assert reload(banned).status == "banned"
    assert logs("user_activated") == []


def test_last_admin_cannot_be_disabled(org_admin_client, org_admin):
    response = org_admin_client.post(
        f"/org/users/{org_admin.pk}/status/", {"action": "disable"}, follow=True
    )
    assert "is the only admin" in response.content.decode()
    assert reload(org_admin).status == "paid"
    assert logs("user_disabled") == []


def test_last_admin_cannot_be_demoted(org_admin_client, org_admin):
    response = org_admin_client.post(
        f"/org/users/{org_admin.pk}/role/", {"role": "member"}, follow=True
    )
    assert "is the only admin" in response.content.decode()
    assert reload(org_admin).role == "admin"
    assert logs("role_changed") == []


def test_banned_admin_does_not_count_as_another_admin(org_admin_client, org_admin, enterprise):
    factories.make_user(enterprise=enterprise, role="admin", status=User.Status.BANNED)
    org_admin_client.post(f"/org/users/{org_admin.pk}/role/", {"role": "auditor"})
    assert reload(org_admin).role == "admin"


def test_admin_can_step_down_when_another_admin_exists(org_admin_client, org_admin, member):
    org_admin_client.post(f"/org/users/{member.pk}/role/", {"role": "admin"})
    org_admin_client.post(f"/org/users/{org_admin.pk}/role/", {"role": "auditor"})
    assert (reload(member).role, reload(org_admin).role) == ("admin", "auditor")
    assert [log.new_value for log in logs("role_changed")] == [
        {"role": "admin"},
        {"role": "auditor"},
    ]


def test_unknown_role_is_refused(org_admin_client, member):
    org_admin_client.post(f"/org/users/{member.pk}/role/", {"role": "owner"})
    assert reload(member).role == "member"


def test_unknown_status_action_is_refused(org_admin_client, member):
    org_admin_client.post(f"/org/users/{member.pk}/status/", {"action": "delete"})
    assert reload(member).status == "paid"


def test_auditor_cannot_change_status_or_role(auditor_client, member):
    assert (
        auditor_client.post(f"/org/users/{member.pk}/status/", {"action": "disable"}).status_code
        == 403
    )
    assert (
        auditor_client.post(f"/org/users/{member.pk}/role/", {"role": "admin"}).status_code == 403
    )
    assert (reload(member).status, reload(member).role) == ("paid", "member")


def test_other_enterprise_user_is_404_for_status_and_role(org_admin_client, other_admin):
    assert (
        org_admin_client.post(
            f"/org/users/{other_admin.pk}/status/", {"action": "disable"}
        ).status_code
        == 404
    )
    assert (
        org_admin_client.post(f"/org/users/{other_admin.pk}/role/", {"role": "member"}).status_code
        == 404
    )
    assert (reload(other_admin).status, reload(other_admin).role) == ("paid", "admin")


def test_status_change_needs_post(org_admin_client, member):
    assert org_admin_client.get(f"/org/users/{member.pk}/status/").status_code == 405


def test_disable_asks_first_without_changing_anything(org_admin_client, member):
    response = org_admin_client.get(f"/org/users/{member.pk}/disable/")
    body = response.content.decode()
    assert response.status_code == 200
    assert f"Disable {member.email}?" in body
    assert "They are signed out at once and cannot sign in until an admin activates them." in body
    assert f'action="/org/users/{member.pk}/status/"' in body
    assert reload(member).status == "paid"
    assert logs("user_disabled") == []


def test_user_page_links_to_the_question_not_a_one_click_disable(org_admin_client, member):
    body = org_admin_client.get(f"/org/users/{member.pk}/").content.decode()
    assert f'href="/org/users/{member.pk}/disable/"' in body
    assert 'value="disable"' not in body


def test_disable_question_is_refused_to_auditors_and_other_enterprises(
    auditor_client, other_admin_client, member
):
    assert auditor_client.get(f"/org/users/{member.pk}/disable/").status_code == 403
    assert other_admin_client.get(f"/org/users/{member.pk}/disable/").status_code == 404


def test_disabled_user_reads_banned_disabled_everywhere(org_admin_client, member):
    response = org_admin_client.post(
        f"/org/users/{member.pk}/status/", {"action": "disable"}, follow=True
    )
    body = response.content.decode()
    assert "is disabled: status Banned (disabled)" in body
    assert '<span class="badge badge-banned">Banned (disabled)</span>' in body
    users = org_admin_client.get("/org/users/?status=banned").content.decode()
    assert '<option value="banned" selected>Banned (disabled)</option>' in users
    assert member.email in users
