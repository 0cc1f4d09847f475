"""The usage ledger's monthly partitions (PostgreSQL): created ahead, strays moved, closed
months detached for archiving, reconcile and the append-only guards intact."""

from __future__ import annotations

from datetime import date
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from metrics import partitions
from metrics.models import DetachedUsageMonth, MonthlyUsage, UsageEvent, UsageEventKey
from tests.metrics.usage_helpers import Api, event, lifetime, make_key, month_inference

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
OLD_JAN, OLD_FEB = date(2025, 1, 1), date(2025, 2, 1)


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def where(event_id: str) -> str:
    """The partition holding an event."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM metrics_usageevent WHERE event_id = %s",
            [event_id],
        )
        return cursor.fetchone()[0]


def raw(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def api(db) -> Api:
    return Api(make_key()[1])


@pytest.fixture
def two_old_months(api, member) -> None:
    """100 tokens in January 2025 and 200 in February, each month in its own partition."""
    api.events(
        [
            event("jan", member.email, tokens=100, occurred_at="2025-01-10T12:00:00Z"),
            event("feb", member.email, tokens=200, occurred_at="2025-02-10T12:00:00Z"),
        ]
    )
    run("create_usage_partitions", "--from", "2025-01")


def test_the_ledger_is_partitioned_with_this_month_and_a_default():
    assert partitions.is_partitioned()
    months = partitions.attached()
    this = partitions.this_month()
    assert {partitions.add_months(this, n) for n in (-1, 0, 1, 2, 3)} <= months.keys()
    assert months[this] == partitions.partition_name(this)


def test_create_makes_months_ahead_and_is_idempotent():
    this = partitions.this_month()
    six_ahead = partitions.add_months(this, 6)

    first = run("create_usage_partitions", "--months-ahead", "6")
    again = run("create_usage_partitions", "--months-ahead", "6")

    assert f"Created {partitions.partition_name(six_ahead)}" in first
    assert six_ahead in partitions.attached()
    assert "Created" not in again and "(0 created, 0 event(s) moved)" in again


def test_create_refuses_a_bad_month():
    with pytest.raises(CommandError, match="not a month"):
        run("create_usage_partitions", "--from", "2025-13")


def test_event_without_a_partition_is_recorded_then_moved_to_its_own(api, member):
    response = api.events([event("old", member.email, occurred_at="2019-05-10T12:00:00Z")])
    assert response.json()["results"][0]["status"] == "recorded"
    assert where("old") == partitions.DEFAULT
    stored = UsageEvent.objects.get()

    out = run("create_usage_partitions")

    assert "Moved 1 event(s) of 2019-05 from the default partition" in out
    assert where("old") == "metrics_usageevent_y2019m05"
    assert list(UsageEvent.objects.values_list("pk", "tokens")) == [(stored.pk, stored.tokens)]
    # Still the one event: a replay is a duplicate, the roll-ups reconcile.
    again = api.events([event("old", member.email, occurred_at="2019-05-10T12:00:00Z")])
    assert again.json()["results"][0]["status"] == "duplicate"
    assert "Roll-ups match the ledger" in run("reconcile_usage")


def test_detach_refuses_the_current_and_the_previous_month():
    this = partitions.this_month()
    for month in (this, partitions.add_months(this, -1), partitions.add_months(this, 5)):
        with pytest.raises(CommandError, match="not closed"):
            run("detach_usage_partition", f"{month:%Y-%m}")
    assert this in partitions.attached()


def test_detach_refuses_a_month_still_in_the_default_partition(api, member):
    api.events([event("old", member.email, occurred_at="2019-05-10T12:00:00Z")])

    with pytest.raises(CommandError, match="default partition: run"):
        run("detach_usage_partition", "2019-05")
    with pytest.raises(CommandError, match="no partition and no events"):
        run("detach_usage_partition", "2018-05")
    assert UsageEvent.objects.count() == 1


def test_detach_sets_a_closed_month_aside_and_reconcile_still_passes(two_old_months, member):
    out = run("detach_usage_partition", "2025-01")

    assert "Detached metrics_usageevent_y2025m01: 1 event(s) of 2025-01" in out
    assert OLD_JAN not in partitions.attached()
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["feb"]
    archived = DetachedUsageMonth.objects.get()
    assert (archived.month, archived.table, archived.events) == (
        OLD_JAN,
        "metrics_usageevent_y2025m01",
        1,
    )
    # Pages read the roll-ups: unchanged. Reconcile covers February, January's roll-ups
    # stand for its rows in the lifetime total.
    assert month_inference(member, OLD_JAN) == 100
    assert lifetime(member) == (300, 0)
    assert "1 detached month(s) left to their roll-ups" in run("reconcile_usage")
    assert "already detached (metrics_usageevent_y2025m01, 1 events)" in run(
        "detach_usage_partition", "2025-01"
    )


def test_a_replay_of_a_detached_event_is_not_counted_again(two_old_months, api, member):
    run("detach_usage_partition", "2025-01")

    response = api.events(
        [event("jan", member.email, tokens=100, occurred_at="2025-01-10T12:00:00Z")]
    )

    # Its row is archived; the key table kept what a replay is compared with.
    assert response.json()["results"][0]["status"] == "duplicate"
    changed = api.events(
        [event("jan", member.email, tokens=99, occurred_at="2025-01-10T12:00:00Z")]
    )
    assert changed.json()["results"][0]["code"] == "conflict"
    assert UsageEventKey.objects.filter(event_id="jan").exists()
    assert lifetime(member) == (300, 0)
    assert "Roll-ups match the ledger" in run("reconcile_usage")


def test_a_late_event_of_a_detached_month_is_recorded_and_reported(two_old_months, api, member):
    run("detach_usage_partition", "2025-01")

    response = api.events(
        [event("late", member.email, tokens=7, occurred_at="2025-01-20T12:00:00Z")]
    )

    assert response.json()["results"][0]["status"] == "recorded"
    assert where("late") == partitions.DEFAULT
    assert month_inference(member, OLD_JAN) == 107
    assert "Roll-ups match the ledger" in run("reconcile_usage")
    out = run("create_usage_partitions")
    assert "1 late event(s) of the detached month 2025-01 are in the default partition" in out
    assert where("late") == partitions.DEFAULT


def test_reconcile_still_catches_drift_after_a_detach(two_old_months, member):
    run("detach_usage_partition", "2025-01")
    MonthlyUsage.objects.filter(user=member, month=OLD_FEB).update(inference_tokens=201)

    with pytest.raises(CommandError, match="differ from the ledger"):
        run("reconcile_usage")


def test_reconcile_catches_an_edited_roll_up_of_a_detached_month(two_old_months, member):
    run("detach_usage_partition", "2025-01")
    MonthlyUsage.objects.filter(user=member, month=OLD_JAN).update(inference_tokens=99)

    with pytest.raises(CommandError, match="differ from the ledger"):
        run("reconcile_usage")  # the lifetime total no longer adds up


def test_detach_refuses_a_month_whose_roll_ups_drift(two_old_months, member):
    MonthlyUsage.objects.filter(user=member, month=OLD_JAN).update(inference_tokens=101)

    with pytest.raises(CommandError, match=r"1 roll-up row\(s\) of 2025-01 differ"):
        run("detach_usage_partition", "2025-01")
    assert OLD_JAN in partitions.attached()
    assert not DetachedUsageMonth.objects.exists()


def test_staff_admin_lists_and_opens_events_of_any_partition(two_old_months, staff_client):
    listing = staff_client.get("/staff/metrics/usageevent/").content.decode()
    assert ">jan<" in listing and ">feb<" in listing
    january = UsageEvent.objects.get(event_id="jan")

    page = staff_client.get(f"/staff/metrics/usageevent/{january.pk}/change/")

    assert page.status_code == 200 and "jan" in page.content.decode()


@pytest.mark.guarded
def test_update_and_delete_are_refused_on_every_part_of_the_ledger(enterprise):
    from tests import factories
    from tests.tokens.helpers import buy

    buy(enterprise, 1_000_000)
    factories.make_user("u@acme.test", enterprise=enterprise, inference=200_000)
    api = Api(make_key()[1])
    api.events(
        [
            event("jan", "u@acme.test", occurred_at="2025-01-10T12:00:00Z"),
            event("old", "u@acme.test", occurred_at="2019-05-10T12:00:00Z"),
            event(
                "now", "u@acme.test", occurred_at=f"{partitions.this_month():%Y-%m}-01T12:00:00Z"
            ),
        ]
    )
    run("create_usage_partitions", "--from", "2025-01")
    api.events([event("older", "u@acme.test", occurred_at="2018-05-10T12:00:00Z")])
    run("detach_usage_partition", "2025-01")
    tables = [
        "metrics_usageevent",
        partitions.partition_name(partitions.this_month()),
        partitions.DEFAULT,
        "metrics_usageevent_y2019m05",
        "metrics_usageevent_y2025m01",  # detached: the archive stays append-only
    ]
    for table in tables:
        for sql in (f"UPDATE {table} SET tokens = tokens + 1", f"DELETE FROM {table}"):
            with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
                raw(sql)
    assert UsageEvent.objects.count() == 3
