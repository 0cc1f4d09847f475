"""The Notifications page in a browser: an admin sets thresholds by keyboard, errors are
read next to the field, an auditor sees the same settings read-only."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from metrics.models import AlertSettings, UsageAlert
from tests import factories
from tests.browser.helpers import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alerts(enterprise):
    ann = factories.make_user("ann@acme.test", enterprise=enterprise, inference=1_000_000)
    UsageAlert.objects.create(
        enterprise=enterprise,
        user=ann,
        pool="inference",
        threshold=80,
        period=dt.date(2026, 12, 1),
        cap=1_000_000,
        used=812_400,
        sent_at=dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC),
        sent_to=["ann@acme.test"],
        attempts=1,
    )
    UsageAlert.objects.create(
        enterprise=enterprise,
        user=None,
        pool="training",
        threshold=100,
        period=dt.date(2026, 12, 1),
        cap=5_000_000,
        used=5_000_250,
        attempts=2,
        last_error="SMTPServerDisconnected: Connection unexpectedly closed",
    )


def test_admin_sets_thresholds_and_recipients(
    page, live_server, org_admin, enterprise, alerts, artifacts
):
    sign_in(page, live_server, org_admin)
    page.goto("/org/")
    expect(page.get_by_test_id("dashboard-alerts")).to_contain_text("ann@acme.test reached 80%")
    page.get_by_role("link", name="Notifications").click()

    thresholds = page.get_by_label("Thresholds (%)")
    expect(thresholds).to_have_value("80, 100")
    thresholds.fill("50, 101")
    page.get_by_role("button", name="Save notification settings").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("“101” is not a whole percentage")
    assert not AlertSettings.objects.filter(enterprise=enterprise).exists()

    page.get_by_label("Thresholds (%)").fill("75, 90, 100")
    page.get_by_label("The enterprise's admins").check()
    page.get_by_label("Also send to (optional)").fill("finops@acme.test")
    page.get_by_role("button", name="Save notification settings").click()

    expect(page.locator(".messages")).to_contain_text("Notification settings saved.")
    expect(page.get_by_label("Thresholds (%)")).to_have_value("75, 90, 100")
    expect(page.get_by_test_id("alert-list")).to_contain_text("Waiting")
    chosen = AlertSettings.objects.get(enterprise=enterprise)
    assert (chosen.thresholds, chosen.recipients) == ([75, 90, 100], "admins")
    page.screenshot(path=str(artifacts / "notifications.png"), full_page=True)


def test_auditor_sees_the_settings_read_only(page, live_server, auditor, alerts, artifacts):
    sign_in(page, live_server, auditor)
    page.goto("/org/notifications/")

    expect(page.get_by_label("Thresholds (%)")).to_be_disabled()
    expect(page.get_by_role("button", name="Save notification settings")).to_have_count(0)
    expect(page.get_by_test_id("readonly-note")).to_be_visible()
    page.screenshot(path=str(artifacts / "notifications_auditor.png"), full_page=True)
