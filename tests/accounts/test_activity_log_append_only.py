"""The activity log is append-only: rows are written once and never changed or removed."""

from __future__ import annotations

import pytest

from asksage_admin.core.audit import log_activity
from asksage_admin.core.models import ActivityLog, AppendOnlyError

pytestmark = pytest.mark.django_db


@pytest.fixture
def row(member) -> ActivityLog:
    return log_activity(actor=member, action=ActivityLog.Action.SIGN_IN, target=member.email)


def test_log_activity_freezes_the_actor_email_and_enterprise(row, member):
    assert (row.actor, row.actor_email, row.enterprise) == (member, member.email, member.enterprise)


def test_editing_a_row_raises(row):
    row.action = ActivityLog.Action.SIGN_OUT
    with pytest.raises(AppendOnlyError):
        row.save()
    assert ActivityLog.objects.get().action == "sign_in"


def test_deleting_a_row_raises(row):
    with pytest.raises(AppendOnlyError):
        row.delete()
    assert ActivityLog.objects.count() == 1


def test_actor_email_survives_the_actor_changing_address(row, member):
    member.email = "renamed@acme.test"
    member.save()
    assert ActivityLog.objects.get().actor_email == "member@acme.test"


def test_bulk_update_of_activity_log_is_refused(org_admin):
    log_activity(actor=org_admin, action=ActivityLog.Action.SIGN_IN)
    with pytest.raises(AppendOnlyError):
        ActivityLog.objects.filter(actor=org_admin).update(action="sign_out")
    with pytest.raises(AppendOnlyError):
        ActivityLog.objects.filter(actor=org_admin).delete()
    assert ActivityLog.objects.filter(actor=org_admin, action="sign_in").count() == 1
