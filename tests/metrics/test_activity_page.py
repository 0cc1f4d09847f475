"""Activity Logs: newest first, filters (actor, action, dates in the enterprise's zone), pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from asksage_admin.core.audit import log_activity
from asksage_admin.core.models import ActivityLog
from tests import factories

pytestmark = pytest.mark.django_db
Action = ActivityLog.Action

# Session, user, device, enterprise + COUNT, one page of rows, the last chain verification,
# and the sidebar's count of open token requests (admins).
ACTIVITY_MAX_QUERIES = 8


def log_at(when: datetime, *, enterprise, actor=None, action=Action.SIGN_IN, target="") -> None:
    ActivityLog.objects.create(
        created_at=when,
        enterprise=enterprise,
        actor=actor,
        actor_email=actor.email if actor else "",
        action=action,
        target=target,
    )


def targets(client, query: str = "") -> list[str]:
    """The Target column of the page, top to bottom."""
    body = client.get(f"/org/activity/{query}").content.decode()
    return [t.strip() for t in re.findall(r'<td data-col="target">(.*?)</td>', body, re.S)]


def test_newest_first(org_admin_client, enterprise, org_admin):
    log_at(datetime(2025, 1, 1, tzinfo=UTC), enterprise=enterprise, actor=org_admin, target="old")
    log_at(datetime(2025, 3, 1, tzinfo=UTC), enterprise=enterprise, actor=org_admin, target="new")
    log_at(datetime(2025, 2, 1, tzinfo=UTC), enterprise=enterprise, actor=org_admin, target="mid")
    assert targets(org_admin_client) == ["new", "mid", "old"]


def test_filter_by_actor_email(org_admin_client, enterprise, org_admin, auditor):
    log_activity(actor=org_admin, action=Action.SIGN_IN, target="by-admin")
    log_activity(actor=auditor, action=Action.SIGN_IN, target="by-auditor")
    assert targets(org_admin_client, "?actor=AUDITOR@") == ["by-auditor"]


def test_filter_by_action(org_admin_client, org_admin):
    log_activity(actor=org_admin, action=Action.SIGN_IN, target="signed-in")
    log_activity(actor=org_admin, action=Action.ROLE_CHANGED, target="role")
    assert targets(org_admin_client, "?action=role_changed") == ["role"]


def test_date_range_uses_the_enterprise_time_zone():
    enterprise = factories.make_enterprise("Kiwi", time_zone="Pacific/Auckland")
    admin = factories.make_user("a@kiwi.test", enterprise=enterprise, role="admin")
    client = factories.verified_client(admin)
    # 11:30 UTC on 31 Jan is 00:30 on 1 Feb in Auckland (UTC+13).
    log_at(datetime(2025, 1, 31, 11, 30, tzinfo=UTC), enterprise=enterprise, target="feb-1")
    log_at(datetime(2025, 1, 31, 10, 30, tzinfo=UTC), enterprise=enterprise, target="jan-31")
    assert targets(client, "?date_from=2025-02-01") == ["feb-1"]
    assert targets(client, "?date_to=2025-01-31") == ["jan-31"]
    assert targets(client, "?date_from=2025-01-31&date_to=2025-02-01") == ["feb-1", "jan-31"]


def test_times_are_shown_in_the_enterprise_time_zone():
    enterprise = factories.make_enterprise("Kiwi", time_zone="Pacific/Auckland")
    admin = factories.make_user("a@kiwi.test", enterprise=enterprise, role="admin")
    log_at(datetime(2025, 1, 31, 11, 30, tzinfo=UTC), enterprise=enterprise, target="x")
    body = factories.verified_client(admin).get("/org/activity/").content.decode()
    assert "1 Feb 2025, 00:30 NZDT" in body


def test_reversed_date_range_is_refused_with_a_message(org_admin_client, org_admin):
    log_activity(actor=org_admin, action=Action.SIGN_IN, target="anything")
    response = org_admin_client.get("/org/activity/?date_from=2025-03-01&date_to=2025-02-01")
    body = response.content.decode()
    assert response.status_code == 200
    assert "The start date must be on or before the end date." in body
    assert "anything" not in body


@pytest.mark.parametrize(
    "query",
    ["?date_from=yesterday", "?action=drop_table", "?date_to=0001-01-01", "?actor=" + "x" * 300],
)
def test_bad_filter_input_shows_an_error_and_no_rows(org_admin_client, org_admin, query):
    log_activity(actor=org_admin, action=Action.SIGN_IN, target="anything")
    body = org_admin_client.get(f"/org/activity/{query}").content.decode()
    assert 'class="error"' in body
    assert "anything" not in body


def test_bad_filter_on_export_is_400_and_logs_nothing(org_admin_client):
    response = org_admin_client.get("/org/exports/activity.csv?date_from=not-a-date")
    assert response.status_code == 400
    assert not ActivityLog.objects.filter(action=Action.EXPORT_DOWNLOADED).exists()


def test_export_applies_the_page_filters(org_admin_client, org_admin):
    log_activity(actor=org_admin, action=Action.SIGN_IN, target="signed-in")
    log_activity(actor=org_admin, action=Action.ROLE_CHANGED, target="role")
    response = org_admin_client.get("/org/exports/activity.csv?action=role_changed")
    text = b"".join(response.streaming_content).decode()
    assert "role_changed" in text
    assert "signed-in" not in text


def test_export_link_carries_the_filters(org_admin_client):
    body = org_admin_client.get("/org/activity/?action=sign_in&actor=bob").content.decode()
    assert 'href="/org/exports/activity.csv?action=sign_in&amp;actor=bob"' in body


def test_allocation_change_shows_old_and_new(org_admin_client, org_admin):
    log_activity(
        actor=org_admin,
        action=Action.ALLOCATION_CHANGED,
        target="member@acme.test",
        old={"max_inference_tokens": 200_000},
        new={"max_inference_tokens": 350_000},
    )
    body = org_admin_client.get("/org/activity/").content.decode()
    assert (
        'Max inference tokens: <span class="old">200,000</span> → <span class="new">350,000</span>'
        in body
    )


def test_paginated_fifty_per_page(org_admin_client, enterprise, org_admin):
    ActivityLog.objects.bulk_create(
        ActivityLog(enterprise=enterprise, actor_email=f"{i}@x.test", action="sign_in")
        for i in range(60)
    )
    first = org_admin_client.get("/org/activity/").content.decode()
    second = org_admin_client.get("/org/activity/?page=2").content.decode()
    assert "Page 1 of 2" in first
    assert first.count("<tr") - second.count("<tr") == 50 - 10


def test_page_offers_no_way_to_edit(org_admin_client, org_admin):
    log_activity(actor=org_admin, action=Action.SIGN_IN, target="x")
    body = org_admin_client.get("/org/activity/").content.decode()
    main = body[body.index("<main") :]
    assert 'method="post"' not in main
    assert "Edit" not in main and "Delete" not in main


@pytest.mark.parametrize("entries", [5, 200])
def test_query_count_does_not_grow(
    org_admin_client, enterprise, entries, django_assert_max_num_queries
):
    ActivityLog.objects.bulk_create(
        ActivityLog(enterprise=enterprise, actor_email="a@x.test", action="sign_in")
        for _ in range(entries)
    )
    with django_assert_max_num_queries(ACTIVITY_MAX_QUERIES):
        assert org_admin_client.get("/org/activity/").status_code == 200
