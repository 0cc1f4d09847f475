"""Frozen monthly statements (metrics.statements, `manage.py close_month`) and their pages."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import User
from asksage_admin.core.models import ActivityLog, AppendOnlyError
from metrics import statements
from metrics.ingest import record_usage_batch
from metrics.models import MonthlyStatement
from tests import factories
from tests.metrics.usage_helpers import event, make_key
from tokens.models import TokenPurchase

pytestmark = pytest.mark.django_db

OCT = dt.date(2026, 10, 1)
NOV = dt.date(2026, 11, 1)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def report(events: list[dict], *, at: str) -> None:
    key, _plain = make_key(f"svc-{len(events)}-{at}")
    results = record_usage_batch(integration=key, events=events, now=utc(at))
    assert {r.status for r in results} == {"recorded"}, results


@pytest.fixture
def ny():
    """An enterprise in New York: its months end four or five hours after UTC's."""
    enterprise = factories.make_enterprise("Empire", time_zone="America/New_York")
    enterprise.created_at = utc("2026-10-01T12:00:00Z")
    enterprise.save(update_fields=["created_at"])
    return enterprise


@pytest.fixture
def people(ny):
    admin = factories.make_user(
        "boss@empire.test", enterprise=ny, role=User.Role.ADMIN, inference=5000, embedding=900
    )
    ann = factories.make_user("ann@empire.test", enterprise=ny, inference=1000, embedding=50)
    return admin, ann


@pytest.fixture
def october(ny, people):
    admin, ann = people
    report(
        [
            event("o1", ann.email, tokens=100, occurred_at="2026-10-02T12:00:00Z"),
            event(
                "o2",
                ann.email,
                tokens=40,
                kind="embedding",
                model="embed",
                occurred_at="2026-10-03T12:00:00Z",
            ),
            event("o3", admin.email, tokens=7, model="claude", occurred_at="2026-10-20T12:00:00Z"),
            # 02:00 UTC on 1 Nov is still 31 October (22:00) in New York.
            event("o4", admin.email, tokens=3, model="claude", occurred_at="2026-11-01T02:00:00Z"),
        ],
        at="2026-11-01T02:30:00Z",
    )
    TokenPurchase.objects.create(
        enterprise=ny,
        inference_tokens=10_000,
        training_tokens=2_000,
        reference="PO-OCT",
        purchased_on=dt.date(2026, 10, 5),
    )
    TokenPurchase.objects.create(
        enterprise=ny,
        inference_tokens=1,
        training_tokens=0,
        reference="PO-NOV",
        purchased_on=dt.date(2026, 11, 2),
    )


def close(at: str) -> list[MonthlyStatement]:
    return statements.close_due_months(now=utc(at))


# -- closing --------------------------------------------------------------------------------


def test_statement_freezes_usage_allocations_and_purchases(ny, people, october):
    admin, ann = people
    (statement,) = close("2026-11-01T05:00:00Z")
    c = statement.content

    assert (statement.enterprise, statement.month) == (ny, OCT)
    assert c["month"] == "2026-10" and c["enterprise"]["time_zone"] == "America/New_York"
    assert c["period"] == {
        "from": "2026-10-01T00:00:00-04:00",
        "until": "2026-11-01T00:00:00-04:00",
    }
    assert c["users"] == [
        {"user_id": admin.pk, "email": admin.email, "inference": 10, "embedding": 0},
        {"user_id": ann.pk, "email": ann.email, "inference": 100, "embedding": 40},
    ]
    assert c["models"] == [
        {"model": "claude", "inference": 10, "embedding": 0},
        {"model": "embed", "inference": 0, "embedding": 40},
        {"model": "gpt-4o", "inference": 100, "embedding": 0},
    ]
    assert c["totals"] == {"inference": 110, "embedding": 40}
    assert (statement.inference_tokens, statement.embedding_tokens) == (110, 40)
    assert {a["email"]: a["max_inference_tokens"] for a in c["allocations"]} == {
        admin.email: 5000,
        ann.email: 1000,
    }
    assert [p["reference"] for p in c["purchases"]] == ["PO-OCT"]
    assert c["pool"] == {"inference_purchased": 10_000, "training_purchased": 2_000}
    assert c["adjustments"] == []


def test_hash_is_sha256_of_the_canonical_json(october):
    (statement,) = close("2026-11-01T05:00:00Z")
    statement.refresh_from_db()  # as stored (jsonb reorders keys; the hash must not care)

    canonical = json.dumps(
        statement.content, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert statement.sha256 == hashlib.sha256(canonical).hexdigest()
    assert statements.verify(statement)
    statement.content["totals"]["inference"] += 1
    assert not statements.verify(statement)


def test_month_closes_only_once_it_has_ended_in_the_enterprise_zone(ny, october):
    # 03:59 UTC on 1 November is 23:59 on 31 October in New York.
    assert close("2026-11-01T03:59:00Z") == []
    with pytest.raises(ValueError, match="has not ended"):
        statements.close_month(ny, OCT, now=utc("2026-11-01T03:59:00Z"))

    (statement,) = close("2026-11-01T04:00:00Z")
    assert statement.month == OCT
    # The event at 02:00 UTC on 1 November is October's in New York.
    assert statement.content["totals"]["inference"] == 110


def test_running_twice_changes_nothing(october):
    (first,) = close("2026-11-01T05:00:00Z")

    assert close("2026-11-01T05:00:00Z") == []
    assert close("2026-11-20T05:00:00Z") == []
    assert statements.close_month(first.enterprise, OCT, now=utc("2026-11-20T00:00:00Z")) is None
    only = MonthlyStatement.objects.get()
    assert (only.pk, only.sha256, only.content) == (first.pk, first.sha256, first.content)


def test_running_late_closes_every_missed_month_oldest_first(ny, october):
    closed = close("2027-01-10T12:00:00Z")

    assert [s.month for s in closed] == [OCT, NOV, dt.date(2026, 12, 1)]
    assert [s.content["totals"]["inference"] for s in closed] == [110, 0, 0]


def test_late_usage_is_an_adjustment_on_the_next_statement(ny, people, october, auditor_client_for):
    admin, ann = people
    (october_statement,) = close("2026-11-01T05:00:00Z")
    frozen = (october_statement.sha256, october_statement.content)

    # Reported on 3 November for 30 October: October's roll-ups take it (quota stays true).
    report(
        [event("late", ann.email, tokens=25, occurred_at="2026-10-30T12:00:00Z")],
        at="2026-11-03T12:00:00Z",
    )
    october_statement.refresh_from_db()
    assert (october_statement.sha256, october_statement.content) == frozen
    assert statements.verify(october_statement)

    client = auditor_client_for(ny)
    monthly = client.get("/org/monthly/").content.decode()
    assert "Adjusted after close" in monthly
    page = client.get("/org/statements/2026-10/").content.decode()
    assert 'data-testid="adjusted-after-close"' in page and "25 tokens" in page

    (november,) = close("2026-12-01T06:00:00Z")  # 01:00 on 1 December in New York
    assert november.content["adjustments"] == [
        {
            "month": "2026-10",
            "user_id": ann.pk,
            "email": ann.email,
            "inference": 25,
            "embedding": 0,
            "recorded_on": "2026-12-01",
        }
    ]
    assert november.adjustment_lines == 1
    assert november.content["totals"] == {"inference": 0, "embedding": 0}
    # Booked once: the next statement does not repeat it.
    (december,) = close("2027-01-01T06:00:00Z")
    assert december.content["adjustments"] == []
    october_statement.refresh_from_db()
    assert october_statement.sha256 == frozen[0]


def test_statements_are_append_only(october):
    (statement,) = close("2026-11-01T05:00:00Z")

    with pytest.raises(AppendOnlyError):
        statement.save()
    with pytest.raises(AppendOnlyError):
        statement.delete()
    with pytest.raises(AppendOnlyError):
        MonthlyStatement.objects.update(sha256="0" * 64)


@pytest.mark.postgres
@pytest.mark.guarded
def test_database_refuses_to_edit_a_statement(db):
    from django.db import DatabaseError, transaction

    enterprise = factories.make_enterprise("Guarded")
    statement = MonthlyStatement.objects.create(
        enterprise=enterprise, month=OCT, content={"a": 1}, sha256="0" * 64
    )
    for sql in (
        "UPDATE metrics_monthlystatement SET inference_tokens = 5 WHERE id = %s",
        "DELETE FROM metrics_monthlystatement WHERE id = %s",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [statement.pk])


def test_command_reports_and_is_idempotent(october):
    out = StringIO()
    call_command("close_month", "--now", "2026-11-01T05:00:00Z", stdout=out)
    assert "Closed empire-" in out.getvalue() and "2026-10: sha256 " in out.getvalue()
    again = StringIO()
    call_command("close_month", "--now", "2026-11-01T05:00:00Z", stdout=again)
    assert "0 statement(s) closed" in again.getvalue()


def test_command_refuses_a_future_now(db):
    with pytest.raises(CommandError, match="future"):
        call_command("close_month", "--now", "2999-01-01T00:00:00Z", stdout=StringIO())


# -- pages ----------------------------------------------------------------------------------


@pytest.fixture
def auditor_client_for():
    def make(enterprise, role=User.Role.AUDITOR):
        user = factories.make_user(
            f"{role}-{enterprise.pk}@empire.test", enterprise=enterprise, role=role
        )
        if role == User.Role.MEMBER:
            return factories.signed_in_client(user)
        return factories.verified_client(user)

    return make


@pytest.mark.parametrize("role", [User.Role.ADMIN, User.Role.AUDITOR])
def test_admin_and_auditor_read_statements(ny, october, auditor_client_for, role):
    (statement,) = close("2026-11-01T05:00:00Z")
    client = auditor_client_for(ny, role)

    listing = client.get("/org/statements/").content.decode()
    assert "/org/statements/2026-10/" in listing and statement.sha256[:16] in listing
    page = client.get("/org/statements/2026-10/")
    html = page.content.decode()
    assert page.status_code == 200
    assert statement.sha256 in html and "Verified" in html
    assert "ann@empire.test" in html and "PO-OCT" in html
    assert "<form" not in html.split('class="sidenav"')[-1] or 'method="post"' not in html


def test_member_is_refused(ny, october, auditor_client_for):
    close("2026-11-01T05:00:00Z")
    client = auditor_client_for(ny, User.Role.MEMBER)

    for url in ("/org/statements/", "/org/statements/2026-10/", "/org/statements/2026-10.csv"):
        assert client.get(url).status_code == 403


def test_another_enterprise_gets_404_for_our_month(ny, october, other_admin_client):
    close("2026-11-01T05:00:00Z")

    assert other_admin_client.get("/org/statements/2026-10/").status_code == 404
    assert other_admin_client.get("/org/statements/2026-10.csv").status_code == 404
    assert "2026-10" not in other_admin_client.get("/org/statements/").content.decode()


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "2026-09"])
def test_unknown_or_impossible_month_is_404(ny, october, auditor_client_for, month):
    close("2026-11-01T05:00:00Z")
    assert auditor_client_for(ny).get(f"/org/statements/{month}/").status_code == 404


def test_csv_is_the_statement_formula_safe_and_logged(ny, people, auditor_client_for):
    admin, _ann = people
    report(
        [
            event(
                "f",
                admin.email,
                tokens=5,
                model='=HYPERLINK("x")',
                occurred_at="2026-10-02T12:00:00Z",
            )
        ],
        at="2026-10-03T00:00:00Z",
    )
    (statement,) = [s for s in close("2026-11-01T05:00:00Z") if s.month == OCT]
    client = auditor_client_for(ny)

    response = client.get("/org/statements/2026-10.csv")
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))

    assert re.search(
        r'filename="empire-\d+-statement-2026-10-[\d-]+\.csv"', response["Content-Disposition"]
    )
    assert rows[0][:3] == ["Section", "Month", "User"]
    assert rows[1][:5] == ["statement", "2026-10", "", "", statement.sha256]
    assert ["model", "2026-10", "", '\'=HYPERLINK("x")', "", "5", "0", ""] in rows
    assert ["user", "2026-10", admin.email, "", "", "5", "0", ""] in rows
    log = ActivityLog.objects.filter(action=ActivityLog.Action.EXPORT_DOWNLOADED).get()
    assert log.new_value["export"] == "statement-2026-10"


def test_statement_pages_have_a_fixed_query_count(
    ny, auditor_client_for, django_assert_max_num_queries
):
    def month_with_users(count: int, month: int, start: int) -> None:
        users = [
            factories.make_user(f"q{n}@empire.test", enterprise=ny, inference=100)
            for n in range(start, start + count)
        ]
        report(
            [
                event(
                    f"q{u.pk}-{month}",
                    u.email,
                    tokens=3,
                    model=f"m{u.pk % 5}",
                    occurred_at=f"2026-{month:02d}-10T12:00:00Z",
                )
                for u in users
            ],
            at="2026-11-20T00:00:00Z",
        )

    month_with_users(2, 9, 0)
    month_with_users(25, 10, 100)
    close("2026-11-01T05:00:00Z")
    client = auditor_client_for(ny)
    client.get("/org/statements/")  # warm the session

    counts = {}
    for url in ("/org/statements/2026-09/", "/org/statements/2026-10/"):
        with django_assert_max_num_queries(30) as captured:
            assert client.get(url).status_code == 200
        counts[url] = len(captured.captured_queries)
    assert counts["/org/statements/2026-09/"] == counts["/org/statements/2026-10/"]

    with django_assert_max_num_queries(30) as few:
        client.get("/org/statements/")
    close("2027-06-01T05:00:00Z")  # seven more statements
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = client.get("/org/statements/").content.decode()
    assert html.count('href="/org/statements/') >= 9


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_write_one_statement(ny, october):
    """Four close_month runs at the same instant: one statement, the others find it."""
    from tests.concurrency import run_together, succeeded

    at = utc("2026-11-01T05:00:00Z")
    results = succeeded(run_together([lambda: statements.close_month(ny, OCT, now=at)] * 4))

    written = [r for r in results if r is not None]
    assert len(written) == 1
    assert MonthlyStatement.objects.get().sha256 == written[0].sha256


def test_big_statement_page_shows_the_heaviest_users_and_says_so(
    ny, people, october, auditor_client_for, monkeypatch
):
    from metrics import statement_views

    monkeypatch.setattr(statement_views, "PAGE_ROWS", 1)
    close("2026-11-01T05:00:00Z")

    html = auditor_client_for(ny).get("/org/statements/2026-10/").content.decode()

    users_table = html.split('data-testid="statement-users"')[1].split("</table>")[0]
    assert "ann@empire.test" in users_table  # 140 tokens
    assert "boss@empire.test" not in users_table  # 10 tokens
    assert 'data-testid="users-truncated"' in html and "heaviest of 2 users" in html
