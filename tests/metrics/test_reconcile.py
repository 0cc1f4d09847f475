"""`manage.py reconcile_usage` proves the roll-ups equal the ledger; the demo reconciles."""

from __future__ import annotations

from datetime import UTC, date, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F, Sum

from asksage_admin.demo.usage import generate_demo_usage
from metrics.models import (
    DailyUsage,
    EnterpriseMonthlyUsage,
    MonthlyUsage,
    ReconcileRun,
    UsageEvent,
    UsageTotal,
)
from tests.metrics.usage_helpers import Api, event, make_key, make_users

pytestmark = pytest.mark.django_db


def reconcile() -> str:
    out = StringIO()
    call_command("reconcile_usage", stdout=out)
    return out.getvalue()


def reconcile_fails() -> tuple[CommandError, str]:
    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("reconcile_usage", stdout=out)
    return failure.value, out.getvalue()


@pytest.fixture
def usage(member, org_admin) -> None:
    api = Api(make_key()[1])
    api.events(
        [
            event("a", member.email, tokens=100),
            event("b", member.email, tokens=40, kind="embedding", model="embed"),
            event("c", org_admin.email, tokens=7, occurred_at="2026-03-01T00:00:00Z"),
        ]
    )


def test_clean_ledger_passes_and_is_recorded(usage):
    output = reconcile()

    assert "match the ledger: 3 events" in output
    run = ReconcileRun.objects.get()
    assert (run.ok, run.drift_count) == (True, 0)
    assert run.finished_at >= run.started_at
    assert ReconcileRun.objects.last_passed() == run


def test_empty_database_passes(db):
    assert "0 events" in reconcile()


@pytest.mark.parametrize(
    ("model", "table"),
    [
        (MonthlyUsage, "monthly_usage"),
        (UsageTotal, "usage_total"),
        (EnterpriseMonthlyUsage, "enterprise_monthly_usage"),
        (DailyUsage, "daily_usage"),
    ],
)
def test_drift_in_any_rollup_fails_with_the_row(usage, model, table):
    model.objects.filter(inference_tokens=100).update(inference_tokens=F("inference_tokens") + 1)

    failure, output = reconcile_fails()

    assert failure.returncode != 0
    assert f"DRIFT {table}" in output
    assert "ledger inference=100" in output and "roll-up inference=101" in output
    run = ReconcileRun.objects.get()
    assert (run.ok, run.drift_count) == (False, 1)
    assert run.details[0]["table"] == table


def test_rollup_row_without_events_is_drift(usage, member, enterprise):
    MonthlyUsage.objects.create(
        user=member, enterprise=enterprise, month=date(2020, 1, 1), embedding_tokens=5
    )

    _failure, output = reconcile_fails()

    assert "monthly_usage user=" in output and "month=2020-01-01" in output


def test_events_missing_from_rollups_are_drift(usage, member):
    MonthlyUsage.objects.filter(user=member).delete()

    failure, output = reconcile_fails()

    assert output.count("DRIFT monthly_usage") == 1
    assert "1 roll-up row(s)" in str(failure)


def test_last_passed_ignores_failed_runs(usage):
    reconcile()
    passed_run = ReconcileRun.objects.get()
    UsageTotal.objects.update(inference_tokens=0)

    reconcile_fails()

    assert ReconcileRun.objects.count() == 2
    assert ReconcileRun.objects.last_passed() == passed_run


def test_last_passed_is_none_before_any_run(db):
    assert ReconcileRun.objects.last_passed() is None


def test_rollups_equal_the_ledger_sums(usage):
    ledger = UsageEvent.objects.aggregate(t=Sum("tokens"))["t"]
    for model in (MonthlyUsage, UsageTotal, EnterpriseMonthlyUsage):
        sums = model.objects.aggregate(i=Sum("inference_tokens"), e=Sum("embedding_tokens"))
        assert sums["i"] + sums["e"] == ledger == 147


NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def demo(enterprise):
    make_users(enterprise, 6)
    return generate_demo_usage(enterprise, now=NOW)


def test_demo_usage_reconciles(demo):
    assert demo.recorded > 500 and demo.rejected == 0
    reconcile()


def test_demo_usage_covers_24_months_with_several_models(demo, enterprise):
    months = MonthlyUsage.objects.filter(enterprise=enterprise).values("month").distinct()
    assert months.count() == 24
    assert (demo.first_month, demo.last_month) == (date(2024, 12, 1), date(2026, 11, 1))
    models = EnterpriseMonthlyUsage.objects.values_list("model", flat=True).distinct()
    assert len(set(models)) >= 4


def test_demo_usage_has_one_clear_spike_and_a_dip(demo, enterprise):
    totals = dict(
        EnterpriseMonthlyUsage.objects.filter(enterprise=enterprise)
        .values("month")
        .annotate(t=Sum("inference_tokens"))
        .values_list("month", "t")
    )
    ordered = [totals[m] for m in sorted(totals)]
    spikes = [i for i in range(3, len(ordered)) if ordered[i] > 1.5 * sum(ordered[i - 3 : i]) / 3]
    assert len(spikes) == 1
    assert totals[date(2026, 8, 1)] < 0.75 * totals[date(2026, 7, 1)]
    assert totals[date(2026, 10, 1)] > 2 * totals[date(2024, 12, 1)]  # growth


def test_demo_rerun_records_duplicates_not_new_usage(demo, enterprise):
    before = UsageEvent.objects.aggregate(t=Sum("tokens"))["t"]

    again = generate_demo_usage(enterprise, now=NOW)

    assert (again.recorded, again.duplicate) == (0, demo.recorded)
    assert UsageEvent.objects.aggregate(t=Sum("tokens"))["t"] == before
    reconcile()


def test_demo_leaves_the_future_alone(demo):
    assert not UsageEvent.objects.filter(occurred_at__gt=NOW).exists()


def test_dashboard_shows_when_reconcile_last_passed(org_admin_client):
    before = org_admin_client.get("/org/").content.decode()
    assert "have not been verified yet" in before
    call_command("reconcile_usage", stdout=StringIO())
    after = org_admin_client.get("/org/").content.decode()
    assert "Usage figures verified" in after
