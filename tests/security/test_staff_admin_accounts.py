"""Account edits in /staff/ go through a service and the activity log; staff sign-out is
logged; names refuse control characters so an invitation can never fail on them."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import TestCase

from accounts.models import Enterprise, User
from asksage_admin.core.models import ActivityLog
from tests import factories
from tests.tokens.helpers import buy

pytestmark = pytest.mark.django_db

USERS = "/staff/accounts/user/"
ENTERPRISES = "/staff/accounts/enterprise/"


def _change(client, user: User, **fields):
    data = {"full_name": user.full_name, "is_active": "on", **fields}
    return client.post(f"{USERS}{user.pk}/change/", {k: v for k, v in data.items() if v})


def _rows(action: str) -> list[ActivityLog]:
    return list(ActivityLog.objects.filter(action=action))


def test_staff_edit_of_a_name_and_active_flag_is_logged_old_and_new(
    operator_client, operator, member
):
    response = _change(operator_client, member, full_name="Maria Member", is_active="")

    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.full_name, member.is_active) == ("Maria Member", False)
    (row,) = _rows(ActivityLog.Action.ACCOUNT_UPDATED)
    assert (row.actor, row.target, row.enterprise) == (operator, member.email, member.enterprise)
    assert row.old_value == {"full_name": "", "is_active": True}
    assert row.new_value == {"full_name": "Maria Member", "is_active": False}


def test_saving_without_a_change_writes_no_row(operator_client, member):
    assert _change(operator_client, member).status_code == 302
    assert _rows(ActivityLog.Action.ACCOUNT_UPDATED) == []


def test_granting_a_group_is_logged(operator_client, operator):
    from django.contrib.auth.models import Group

    person = factories.make_user("new.seller@asksage.test", is_staff=True)
    sales = Group.objects.get(name="Sales")

    _change(operator_client, person, is_staff="on", groups=[sales.pk])

    (row,) = _rows(ActivityLog.Action.ACCOUNT_UPDATED)
    assert (row.old_value, row.new_value) == ({"groups": []}, {"groups": ["Sales"]})


def test_staff_powers_refused_for_an_enterprise_member(operator_client, member):
    response = _change(operator_client, member, is_staff="on")

    assert response.status_code == 200
    assert "never" in response.content.decode()
    assert User.objects.get(pk=member.pk).is_staff is False
    assert _rows(ActivityLog.Action.ACCOUNT_UPDATED) == []


def test_the_email_is_not_editable_in_staff_admin(operator_client, member):
    _change(operator_client, member, email="attacker@evil.test", full_name="M")
    assert User.objects.get(pk=member.pk).email == member.email


def test_staff_created_account_is_logged(operator_client, operator):
    data = {
        "email": "Fresh@Example.com",
        "full_name": "Fresh Person",
        "usable_password": "true",
        "password1": factories.PASSWORD,
        "password2": factories.PASSWORD,
    }
    response = operator_client.post(f"{USERS}add/", data)

    assert response.status_code == 302
    user = User.objects.get(email="fresh@example.com")
    assert user.check_password(factories.PASSWORD)
    (row,) = _rows(ActivityLog.Action.ACCOUNT_CREATED)
    assert (row.actor, row.target) == (operator, "fresh@example.com")


# Names with control characters


@pytest.mark.parametrize(
    "bad", ["Evil\nCorp", "Evil\rBcc: x@y.test", "Tab\tCorp", "Nul\x00", "L\u2028S"]
)
def test_staff_enterprise_form_refuses_control_characters(sales_client, bad):
    data = {"name": bad, "slug": "evil", "time_zone": "UTC", "attach_role": "member"}
    response = sales_client.post(f"{ENTERPRISES}add/", data)

    assert response.status_code == 200
    body = response.content.decode()
    assert "control characters" in body or "Null characters are not allowed" in body
    assert not Enterprise.objects.filter(slug="evil").exists()


def test_staff_enterprise_rename_refuses_a_newline(sales_client, enterprise):
    data = {"name": "Acme\nCorp", "slug": enterprise.slug, "time_zone": "UTC"}
    data["attach_role"] = "member"
    response = sales_client.post(f"{ENTERPRISES}{enterprise.pk}/change/", data)

    assert "control characters" in response.content.decode()
    assert Enterprise.objects.get(pk=enterprise.pk).name == "Acme Corp"


def test_staff_user_form_refuses_a_newline_in_a_full_name(operator_client, member):
    response = _change(operator_client, member, full_name="Mallory\nAdmin")

    assert "control characters" in response.content.decode()
    assert User.objects.get(pk=member.pk).full_name == ""


def test_an_invitation_never_fails_on_the_enterprise_name(org_admin_client, enterprise):
    """Even a name stored before the rule existed gives a one-line subject, not a 500."""
    Enterprise.objects.filter(pk=enterprise.pk).update(name="Acme\nCorp")
    buy(enterprise, 2_000_000)

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = org_admin_client.post("/org/users/add/", {"email": "newbie@acme.test"})

    assert response.status_code == 302
    (message,) = mail.outbox
    assert message.subject == "You are invited to Acme Corp on AskSage"


# Sign-out and people who are not staff


def test_staff_logout_logs_the_sign_out(sales_client, sales_staff):
    response = sales_client.post("/staff/logout/")

    assert response.status_code == 302
    (row,) = _rows(ActivityLog.Action.SIGN_OUT)
    assert (row.actor, row.target) == (sales_staff, sales_staff.email)
    assert "_auth_user_id" not in sales_client.session


def test_signed_in_non_staff_gets_403_with_a_way_back_not_a_login_form(auditor_client):
    response = auditor_client.get("/staff/accounts/enterprise/")

    assert response.status_code == 403
    body = response.content.decode()
    assert 'href="/settings/"' in body
    assert 'name="password"' not in body


def test_staff_setting_a_password_is_logged(operator_client, operator, member):
    new = "A-Brand-New-Passphrase-77"
    data = {"usable_password": "true", "password1": new, "password2": new}
    response = operator_client.post(f"{USERS}{member.pk}/password/", data)

    assert response.status_code == 302
    assert User.objects.get(pk=member.pk).check_password(new)
    (row,) = _rows(ActivityLog.Action.PASSWORD_RESET)
    assert (row.actor, row.target, row.enterprise) == (operator, member.email, member.enterprise)


def test_a_refused_password_form_writes_no_row(operator_client, member):
    data = {"usable_password": "true", "password1": "short", "password2": "other"}
    assert operator_client.post(f"{USERS}{member.pk}/password/", data).status_code == 200
    assert _rows(ActivityLog.Action.PASSWORD_RESET) == []
