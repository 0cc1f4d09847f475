"""Provisioning rules: create, attach, roles, activate, suspend, reactivate."""

from __future__ import annotations

import pytest

from accounts.models import Enterprise, User
from asksage_admin.core.errors import Refused
from tests import factories
from tests.tokens.helpers import MIN, buy, logs, people, reload
from tokens import membership, provisioning

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending():
    return factories.make_enterprise("Initech", status=Enterprise.Status.PENDING)


def _ready(enterprise, users: int = 4, inference: int = 2_000_000) -> list[User]:
    """An enterprise one step from activation: users without allocation, an admin, tokens."""
    buy(enterprise, inference)
    members = people(enterprise, users, inference=0)
    User.objects.filter(pk=members[0].pk).update(role=User.Role.ADMIN)
    return members


def _refused_activation(staff_user, enterprise) -> Refused:
    with pytest.raises(Refused) as info:
        provisioning.activate_enterprise(actor=staff_user, enterprise=enterprise)
    assert reload_enterprise(enterprise).status == Enterprise.Status.PENDING
    return info.value


def reload_enterprise(enterprise) -> Enterprise:
    return Enterprise.objects.get(pk=enterprise.pk)


def test_create_enterprise_is_pending_and_logged(staff_user):
    created = provisioning.create_enterprise(
        actor=staff_user, name="Hooli", slug="hooli", time_zone="Europe/Paris"
    )
    assert (created.status, created.time_zone) == (Enterprise.Status.PENDING, "Europe/Paris")
    (log,) = logs("enterprise_created")
    assert (log.actor, log.enterprise) == (staff_user, created)


def test_create_enterprise_with_unknown_time_zone_is_refused(staff_user):
    with pytest.raises(Refused) as info:
        provisioning.create_enterprise(
            actor=staff_user, name="Hooli", slug="hooli", time_zone="Mars"
        )
    assert "time_zone" in info.value.rows
    assert not Enterprise.objects.filter(slug="hooli").exists()


def test_update_enterprise_logs_old_and_new(staff_user, pending):
    provisioning.update_enterprise(actor=staff_user, enterprise=pending, time_zone="Asia/Tokyo")
    assert reload_enterprise(pending).time_zone == "Asia/Tokyo"
    (log,) = logs("enterprise_updated")
    assert (log.old_value, log.new_value) == ({"time_zone": "UTC"}, {"time_zone": "Asia/Tokyo"})


def test_pasted_emails_are_split_in_any_shape():
    text = "Ann@x.org, bob@x.org;\n  carol@x.org\t<dan@x.org>\nann@x.org"
    assert membership.split_emails(text) == ["ann@x.org", "bob@x.org", "carol@x.org", "dan@x.org"]


def test_attach_registered_users(staff_user, pending):
    ann, bob = factories.make_user("ann@x.org"), factories.make_user("bob@x.org")
    membership.attach_users(
        actor=staff_user, enterprise=pending, emails=["ann@x.org", "bob@x.org"], role="admin"
    )
    assert {(u.enterprise, u.role) for u in (reload(ann), reload(bob))} == {(pending, "admin")}
    assert [log.target for log in logs("user_attached")] == ["ann@x.org", "bob@x.org"]
    assert logs("user_attached")[0].enterprise == pending


def test_attach_with_unregistered_email_attaches_nobody(staff_user, pending):
    ann = factories.make_user("ann@x.org")
    with pytest.raises(Refused) as info:
        membership.attach_users(
            actor=staff_user, enterprise=pending, emails=["ann@x.org", "ghost@x.org"]
        )
    assert "not registered" in info.value.rows["ghost@x.org"]
    assert reload(ann).enterprise is None
    assert logs("user_attached") == []


def test_attach_user_of_another_enterprise_is_refused(staff_user, pending, other_admin):
    with pytest.raises(Refused) as info:
        membership.attach_users(actor=staff_user, enterprise=pending, emails=[other_admin.email])
    assert "another enterprise" in info.value.rows[other_admin.email]
    assert reload(other_admin).enterprise != pending


def test_attach_to_active_enterprise_gives_the_minimum(staff_user, enterprise):
    buy(enterprise, 1_000_000)
    ann = factories.make_user("ann@x.org")
    membership.attach_users(actor=staff_user, enterprise=enterprise, emails=["ann@x.org"])
    assert reload(ann).max_inference_tokens == MIN


def test_attach_to_active_enterprise_without_room_is_refused(staff_user, enterprise):
    buy(enterprise, 100_000)
    ann = factories.make_user("ann@x.org")
    with pytest.raises(Refused) as info:
        membership.attach_users(actor=staff_user, enterprise=enterprise, emails=["ann@x.org"])
    assert info.value.code == "over_pool"
    assert reload(ann).enterprise is None


def test_set_roles_logs_each_change(staff_user, pending):
    a, b, c = people(pending, 3, inference=0)
    membership.set_roles(actor=staff_user, enterprise=pending, admins=[a.pk], auditors=[b.pk])
    assert [reload(u).role for u in (a, b, c)] == ["admin", "auditor", "member"]
    assert {(log.target, log.new_value["role"]) for log in logs("role_changed")} == {
        (a.email, "admin"),
        (b.email, "auditor"),
    }


def test_set_roles_cannot_leave_active_enterprise_without_admin(staff_user, org_admin, member):
    with pytest.raises(Refused) as info:
        membership.set_roles(
            actor=staff_user, enterprise=org_admin.enterprise, admins=[], auditors=[member.pk]
        )
    assert info.value.code == "last_admin"
    assert reload(org_admin).role == "admin"


def test_activation_gives_each_paid_user_the_minimum(staff_user, pending):
    members = _ready(pending)
    keeps = factories.make_user(enterprise=pending, inference=300_000)
    banned = factories.make_user(enterprise=pending, status=User.Status.BANNED)
    buy(pending, 1_000_000, ref="PO-2")  # six users need 3,000,000 purchased
    provisioning.activate_enterprise(actor=staff_user, enterprise=pending)
    assert reload_enterprise(pending).status == Enterprise.Status.ACTIVE
    assert reload_enterprise(pending).activated_at is not None
    assert {reload(u).max_inference_tokens for u in members} == {MIN}
    assert reload(keeps).max_inference_tokens == 300_000
    assert reload(banned).max_inference_tokens == 0
    (log,) = logs("enterprise_activated")
    assert (log.old_value, log.new_value) == ({"status": "pending"}, {"status": "active"})
    assert len(logs("allocation_changed")) == 4


def test_activation_with_three_users_is_refused(staff_user, pending):
    _ready(pending, users=3)
    error = _refused_activation(staff_user, pending)
    assert "It has 3 users; at least 4 are needed." in error.message


def test_activation_without_admin_is_refused(staff_user, pending):
    members = _ready(pending)
    User.objects.filter(pk=members[0].pk).update(role=User.Role.MEMBER)
    assert "It has no admin" in _refused_activation(staff_user, pending).message


def test_activation_with_banned_admin_only_is_refused(staff_user, pending):
    members = _ready(pending)
    User.objects.filter(pk=members[0].pk).update(status=User.Status.BANNED)
    assert "It has no admin" in _refused_activation(staff_user, pending).message


def test_activation_with_too_few_tokens_is_refused(staff_user, pending):
    _ready(pending, inference=1_999_999)
    error = _refused_activation(staff_user, pending)
    assert "4 users need at least 2,000,000" in error.message


def test_refused_activation_is_logged_and_changes_nothing(staff_user, pending):
    members = _ready(pending, users=3)
    _refused_activation(staff_user, pending)
    (log,) = logs("enterprise_activation_refused")
    assert log.enterprise == pending and log.new_value["reasons"]
    assert {reload(u).max_inference_tokens for u in members} == {0}
    assert logs("allocation_changed") == []


def test_active_enterprise_cannot_be_activated_again(staff_user, enterprise):
    with pytest.raises(Refused) as info:
        provisioning.activate_enterprise(actor=staff_user, enterprise=enterprise)
    assert info.value.code == "state"


def test_suspend_and_reactivate(staff_user, enterprise):
    _ready(enterprise)
    provisioning.suspend_enterprise(actor=staff_user, enterprise=enterprise)
    assert reload_enterprise(enterprise).status == "suspended"
    provisioning.reactivate_enterprise(actor=staff_user, enterprise=enterprise)
    assert reload_enterprise(enterprise).status == "active"
    assert [log.new_value for log in logs("enterprise_suspended")] == [{"status": "suspended"}]
    assert [log.old_value for log in logs("enterprise_reactivated")] == [{"status": "suspended"}]


def test_suspend_pending_enterprise_is_refused(staff_user, pending):
    with pytest.raises(Refused):
        provisioning.suspend_enterprise(actor=staff_user, enterprise=pending)
    assert reload_enterprise(pending).status == "pending"


def test_reactivation_checks_the_activation_rules(staff_user, enterprise):
    _ready(enterprise, users=3)
    provisioning.suspend_enterprise(actor=staff_user, enterprise=enterprise)
    with pytest.raises(Refused) as info:
        provisioning.reactivate_enterprise(actor=staff_user, enterprise=enterprise)
    assert "at least 4" in info.value.message
    assert reload_enterprise(enterprise).status == "suspended"
