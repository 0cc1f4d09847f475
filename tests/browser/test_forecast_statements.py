"""Issue 16 in the browser: the Users table's Runs out column, the Dashboard forecast and a
monthly statement page (screenshots in artifacts/)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from metrics import forecast, statements
from metrics.forecast import WINDOW_DAYS
from metrics.ingest import record_usage_batch
from metrics.models import DailyUsage, MonthlyUsage
from tests import factories
from tests.browser.helpers import sign_in
from tests.metrics.helpers import add_usage
from tests.metrics.usage_helpers import event, make_key
from tokens.models import TokenPurchase

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _history(user, per_day: int, today: dt.date, used: int) -> None:
    first, _ = forecast.window(today)
    DailyUsage.objects.bulk_create(
        DailyUsage(
            user=user,
            enterprise=user.enterprise,
            day=first + dt.timedelta(days=n),
            inference_tokens=per_day * (3 if n == 5 else 1),  # one spiky day
            embedding_tokens=per_day // 10,
        )
        for n in range(WINDOW_DAYS)
    )
    MonthlyUsage.objects.create(
        user=user, enterprise=user.enterprise, month=today.replace(day=1), inference_tokens=used
    )


def test_runs_out_column_and_dashboard_forecast(
    page, live_server, enterprise, org_admin, artifacts
):
    today = timezone.localdate(timezone=enterprise.tzinfo)
    TokenPurchase.objects.create(
        enterprise=enterprise,
        inference_tokens=5_000_000,
        training_tokens=4_000_000,
        reference="PO-2026-17",
    )
    for name, cap, per_day, used in [
        ("ada", 400_000, 30_000, 200_000),
        ("grace", 250_000, 9_000, 40_000),
        ("alan", 300_000, 40_000, 320_000),
        ("edsger", 900_000, 2_000, 10_000),
        ("barbara", 200_000, 0, 0),
    ]:
        user = factories.make_user(f"{name}@acme.test", enterprise=enterprise, inference=cap)
        if per_day:
            _history(user, per_day, today, used)
            add_usage(user, today.replace(day=1), embedding=per_day * 20)

    sign_in(page, live_server, org_admin)
    page.goto("/org/users/")
    page.get_by_role("link", name="Runs out").click()
    page.wait_for_url("**sort=runs_out_days**")
    first_row = page.locator("tbody tr").first
    expect(first_row).to_contain_text("alan@acme.test")
    expect(first_row).to_contain_text("Cap reached")
    expect(page.get_by_test_id("runs-out-help")).to_contain_text("busiest day")
    page.screenshot(path=str(artifacts / "users-runs-out.png"), full_page=True)

    page.goto("/org/")
    expect(page.get_by_test_id("forecast-training")).to_contain_text("the training pool lasts")
    page.get_by_test_id("forecast").screenshot(path=str(artifacts / "dashboard-forecast.png"))


def test_statement_page_with_an_adjustment(
    page, live_server, enterprise, org_admin, member, artifacts
):
    def report(events, at):
        key, _ = make_key(f"svc-{at}")
        record_usage_batch(integration=key, events=events, now=dt.datetime.fromisoformat(at))

    report(
        [
            event("s1", member.email, tokens=120_000, occurred_at="2026-10-02T12:00:00+00:00"),
            event(
                "s2",
                org_admin.email,
                tokens=45_500,
                model="claude-3-5-sonnet",
                occurred_at="2026-10-14T09:00:00+00:00",
            ),
            event(
                "s3",
                member.email,
                tokens=8_000,
                kind="embedding",
                model="text-embedding-3-large",
                occurred_at="2026-10-20T09:00:00+00:00",
            ),
        ],
        "2026-10-21T00:00:00+00:00",
    )
    TokenPurchase.objects.create(
        enterprise=enterprise,
        inference_tokens=1_000_000,
        training_tokens=500_000,
        reference="PO-2026-10",
        purchased_on=dt.date(2026, 10, 3),
    )
    statements.close_due_months(now=dt.datetime(2026, 11, 1, 1, tzinfo=dt.UTC))
    report(
        [event("late", member.email, tokens=3_250, occurred_at="2026-10-31T22:00:00+00:00")],
        "2026-11-02T08:00:00+00:00",
    )
    statements.close_due_months(now=dt.datetime(2026, 12, 1, 1, tzinfo=dt.UTC))

    sign_in(page, live_server, org_admin)
    page.goto("/org/statements/")
    expect(page.get_by_test_id("statements")).to_contain_text("October 2026")
    page.get_by_role("link", name="November 2026", exact=True).click()
    expect(page.get_by_test_id("adjustments")).to_contain_text("3,250")
    expect(page.get_by_test_id("statement-hash")).to_contain_text("Verified")
    page.screenshot(path=str(artifacts / "statement-november.png"), full_page=True)

    page.goto("/org/statements/2026-10/")
    expect(page.get_by_test_id("adjusted-after-close")).to_contain_text("3,250 tokens")
    expect(page.get_by_test_id("statement-users")).to_contain_text(member.email)
    page.screenshot(path=str(artifacts / "statement-october.png"), full_page=True)
    page.goto("/org/monthly/")
    expect(page.get_by_test_id("adjusted-months")).to_contain_text("October 2026")
