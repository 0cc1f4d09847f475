"""The CSV exports: streamed, named, formula-safe, logged, and equal to the roll-ups."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone

from accounts.models import User
from asksage_admin.core.audit import log_activity
from asksage_admin.core.models import ActivityLog
from metrics.exports import neutralise
from metrics.queries import add_months, month_start
from tests import factories
from tests.metrics.helpers import (
    add_history,
    add_usage,
    add_usage_rows,
    make_members,
    make_purchase,
)

pytestmark = pytest.mark.django_db

PAYLOADS = ["=1+2", "@SUM(A1)", "-2+3", "+cmd|' /C calc'!A0", "\tTAB", "\rCR"]
# Session, user, device, enterprise + row count, log insert (savepoint, lock and move the
# chain head, insert, release), the rows; the users exports also read the pools for the
# shared Users table (two sums).
EXPORT_MAX_QUERIES = 13


def download(client, url: str) -> tuple[StreamingHttpResponse, list[list[str]]]:
    response = client.get(url)
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8")
    return response, list(csv.reader(io.StringIO(text)))


def export_logs() -> list[ActivityLog]:
    return list(ActivityLog.objects.filter(action=ActivityLog.Action.EXPORT_DOWNLOADED))


# --- Cell neutralisation --------------------------------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS)
def test_formula_text_is_prefixed(payload):
    assert neutralise(payload) == "'" + payload


@pytest.mark.parametrize("value", [0, 42, -7, 10**15, "plain", "a=b", "", None])
def test_numbers_and_harmless_text_are_unchanged(value):
    assert neutralise(value) == value


@pytest.mark.parametrize("payload", PAYLOADS)
def test_injection_in_user_names_comes_out_neutralised(org_admin_client, enterprise, payload):
    evil = factories.make_user("evil@acme.test", enterprise=enterprise)
    User.objects.filter(pk=evil.pk).update(full_name=payload)
    _, rows = download(org_admin_client, "/org/exports/users.csv")
    header = rows[0]
    line = next(r for r in rows if r[header.index("Email")] == "evil@acme.test")
    assert line[header.index("Name")] == "'" + payload


def test_injection_in_activity_targets_round_trips(org_admin_client, org_admin):
    for payload in PAYLOADS:
        log_activity(actor=org_admin, action=ActivityLog.Action.USER_ADDED, target=payload)
    _, rows = download(org_admin_client, "/org/exports/activity.csv")
    targets = {r[rows[0].index("Target")] for r in rows[1:]}
    assert {"'" + p for p in PAYLOADS} <= targets
    assert not any(t.startswith(("=", "+", "-", "@", "\t", "\r")) for t in targets)


def test_email_that_looks_like_a_formula_is_neutralised(org_admin_client, enterprise):
    factories.make_user("=hyperlink(1)@acme.test", enterprise=enterprise)
    _, rows = download(org_admin_client, "/org/exports/users-with-tokens.csv")
    assert "'=hyperlink(1)@acme.test" in [r[1] for r in rows]


# --- Token Usage CSV ------------------------------------------------------------------------


def test_token_usage_csv_has_full_monthly_history(org_admin_client, member, auditor):
    add_history(member, date(2024, 11, 1), [(1_000, 10), (2_000, 0)], model="gpt-4o")
    add_usage(auditor, date(2025, 2, 1), inference=5, embedding=6, model="")
    _, rows = download(org_admin_client, "/org/exports/token-usage.csv")
    assert rows == [
        ["Period", "Inference Tokens", "Embedding Tokens", "Total Tokens"],
        ["2024-11", "1000", "10", "1010"],
        ["2024-12", "2000", "0", "2000"],
        ["2025-01", "0", "0", "0"],
        ["2025-02", "5", "6", "11"],
    ]


def test_token_usage_csv_numbers_are_unquoted_and_unprefixed(org_admin_client, member):
    add_usage(member, date(2025, 1, 1), inference=1_234_567, embedding=89)
    response = org_admin_client.get("/org/exports/token-usage.csv")
    text = b"".join(response.streaming_content).decode()
    assert "2025-01,1234567,89,1234656\r\n" in text


def test_token_usage_csv_is_streamed_with_slug_and_date(org_admin_client, enterprise):
    response = org_admin_client.get("/org/exports/token-usage.csv")
    today = timezone.localdate(timezone=enterprise.tzinfo)
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (
        f'attachment; filename="{enterprise.slug}-token-usage-{today:%Y-%m-%d}.csv"'
    )


def test_token_usage_csv_of_empty_enterprise_is_a_header(org_admin_client):
    _, rows = download(org_admin_client, "/org/exports/token-usage.csv")
    assert rows == [["Period", "Inference Tokens", "Embedding Tokens", "Total Tokens"]]
    assert export_logs()[0].new_value["rows"] == 0


# --- Users exports --------------------------------------------------------------------------


def test_users_csv_lists_the_enterprise_people(org_admin_client, org_admin, member, other_admin):
    _, rows = download(org_admin_client, "/org/exports/users.csv")
    assert rows[0] == ["ID", "Email", "Name", "Role", "Status", "Joined"]
    assert {r[1]: r[3] for r in rows[1:]} == {
        "admin@acme.test": "Admin",
        "member@acme.test": "Member",
    }
    assert rows[1][0] == str(User.objects.get(email=rows[1][1]).pk)


def test_users_with_tokens_csv_matches_rollups(org_admin_client, enterprise, member):
    this = month_start(enterprise)
    User.objects.filter(pk=member.pk).update(max_inference_tokens=300_000, max_embedding_tokens=7)
    add_usage(member, add_months(this, -3), inference=1_000, embedding=400)
    add_usage(member, add_months(this, -1), inference=2_000)
    add_usage(member, this, inference=3_000, embedding=5)
    _, rows = download(org_admin_client, "/org/exports/users-with-tokens.csv")
    assert rows[0] == [
        "ID",
        "Email",
        "Role",
        "Status",
        "Max Inference Tokens",
        "Max Embedding Tokens",
        "Total Usage",
        "Monthly Inference Tokens",
        "Prev Month Inference",
    ]
    line = next(r for r in rows if r[1] == "member@acme.test")
    assert line == [str(member.pk), "member@acme.test", "Member", "Paid"] + [
        "300000",
        "7",
        str(1_000 + 400 + 2_000 + 3_000 + 5),
        "3000",
        "2000",
    ]


def test_users_with_tokens_user_without_usage_has_zeros(org_admin_client, member):
    _, rows = download(org_admin_client, "/org/exports/users-with-tokens.csv")
    line = next(r for r in rows if r[1] == "member@acme.test")
    assert line[4:] == ["0", "0", "0", "0", "0"]


def test_users_exports_apply_the_users_page_filters(org_admin_client, member, auditor):
    _, rows = download(org_admin_client, "/org/exports/users-with-tokens.csv?role=auditor")
    assert [r[1] for r in rows[1:]] == ["auditor@acme.test"]


@pytest.mark.parametrize("url", ["/org/exports/users.csv", "/org/exports/users-with-tokens.csv"])
@pytest.mark.parametrize("query", ["role=owner", "status=dead", "role=auditor&status=dead"])
def test_users_export_with_an_invalid_filter_is_400_not_everyone(
    org_admin_client, member, auditor, url, query
):
    """django-filter drops an invalid field and filters by the rest: never a wider file."""
    response = org_admin_client.get(f"{url}?{query}")
    assert response.status_code == 400
    body = response.content.decode()
    assert "Invalid filter" in body and "Select a valid choice" in body
    assert "member@acme.test" not in body
    assert export_logs() == []


# --- Activity log rows ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/org/exports/token-usage.csv", "token-usage"),
        ("/org/exports/users.csv", "users"),
        ("/org/exports/users-with-tokens.csv", "users-with-tokens"),
        ("/org/exports/activity.csv", "activity-log"),
    ],
)
def test_each_download_logs_its_name_and_row_count(
    auditor_client, auditor, enterprise, member, url, name
):
    add_history(member, date(2025, 1, 1), [(1, 1)] * 3)
    log_activity(actor=member, action=ActivityLog.Action.SIGN_IN)
    _, rows = download(auditor_client, url)
    (log,) = export_logs()
    assert (log.actor, log.enterprise, log.target) == (auditor, enterprise, name)
    assert log.new_value["export"] == name
    assert log.new_value["rows"] == len(rows) - 1
    assert log.new_value["complete"] is True


def test_activity_export_does_not_include_its_own_log_row(org_admin_client, org_admin):
    log_activity(actor=org_admin, action=ActivityLog.Action.SIGN_IN)
    _, rows = download(org_admin_client, "/org/exports/activity.csv")
    assert len(rows) == 2
    assert export_logs()[0].new_value["rows"] == 1


def test_download_log_row_records_where_from(org_admin_client):
    response = org_admin_client.get("/org/exports/users.csv", REMOTE_ADDR="203.0.113.9")
    assert export_logs() == []  # written when the stream ends, with the hash of what was sent
    b"".join(response.streaming_content)
    (log,) = export_logs()
    assert log.ip_address == "203.0.113.9"
    assert log.request_id == response["X-Request-ID"]


# --- Query counts ---------------------------------------------------------------------------


@pytest.mark.parametrize("months", [5, 200])
def test_token_usage_export_query_count_does_not_grow(
    org_admin_client, member, months, django_assert_max_num_queries
):
    add_history(member, date(2000, 1, 1), [(3, 1)] * months)
    with django_assert_max_num_queries(EXPORT_MAX_QUERIES):
        _, rows = download(org_admin_client, "/org/exports/token-usage.csv")
    assert len(rows) == months + 1


@pytest.mark.parametrize("url", ["/org/exports/users.csv", "/org/exports/users-with-tokens.csv"])
@pytest.mark.parametrize("users", [5, 200])
def test_users_export_query_count_does_not_grow(
    org_admin_client, enterprise, url, users, django_assert_max_num_queries
):
    members = make_members(enterprise, users)
    add_usage_rows(members, month_start(enterprise), inference=10, embedding=2)
    make_purchase(enterprise, inference=10**9)
    with django_assert_max_num_queries(EXPORT_MAX_QUERIES):
        _, rows = download(org_admin_client, url)
    assert len(rows) == users + 2  # header, the members, the admin


@pytest.mark.parametrize("entries", [5, 200])
def test_activity_export_query_count_does_not_grow(
    org_admin_client, org_admin, entries, django_assert_max_num_queries
):
    ActivityLog.objects.bulk_create(
        ActivityLog(enterprise=org_admin.enterprise, actor=org_admin, action="sign_in")
        for _ in range(entries)
    )
    with django_assert_max_num_queries(EXPORT_MAX_QUERIES):
        _, rows = download(org_admin_client, "/org/exports/activity.csv")
    assert len(rows) == entries + 1
