"""The Notifications page (usage-alert settings) and the Dashboard's recent alerts."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from asksage_admin.core.models import ActivityLog
from metrics.models import AlertSettings, UsageAlert
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/org/notifications/"
VALID = {
    "enabled": "on",
    "thresholds": "75, 90,100",
    "recipients": "admins",
    "extra_emails": "Ops@Acme.test\nfinance@acme.test",
}


def saved(enterprise) -> AlertSettings | None:
    return AlertSettings.objects.filter(enterprise=enterprise).first()


def test_admin_sees_the_defaults(org_admin_client):
    response = org_admin_client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="80, 100"' in html and "Save notification settings" in html
    assert re.search(r'value="both"[^>]*checked', html)
    assert not re.search(r'value="user"[^>]*checked', html)


def test_admin_saves_and_the_change_is_logged(org_admin_client, enterprise, org_admin):
    response = org_admin_client.post(URL, VALID)

    assert response.status_code == 302 and response["Location"] == URL
    chosen = saved(enterprise)
    assert (chosen.enabled, chosen.thresholds, chosen.recipients, chosen.extra_emails) == (
        True,
        [75, 90, 100],
        "admins",
        ["ops@acme.test", "finance@acme.test"],
    )
    assert chosen.updated_by == org_admin
    log = ActivityLog.objects.get(action="alert_settings_changed")
    assert log.old_value["thresholds"] == [80, 100]
    assert log.new_value["thresholds"] == [75, 90, 100]
    assert log.enterprise == enterprise
    assert 'value="75, 90, 100"' in org_admin_client.get(URL).content.decode()


def test_admin_switches_alerts_off(org_admin_client, enterprise):
    response = org_admin_client.post(URL, VALID | {"enabled": ""})

    assert response.status_code == 302
    assert saved(enterprise).enabled is False


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ("", "This field is required."),
        ("0", "not a whole percentage from 1 to 100"),
        ("101", "not a whole percentage from 1 to 100"),
        ("80.5", "not a whole percentage from 1 to 100"),
        ("-80", "not a whole percentage from 1 to 100"),
        ("eighty", "not a whole percentage from 1 to 100"),
        ("10,20,30,40,50,60", "At most 5 thresholds."),
    ],
)
def test_bad_thresholds_are_refused_and_nothing_changes(
    org_admin_client, enterprise, thresholds, message
):
    response = org_admin_client.post(URL, VALID | {"thresholds": thresholds})

    assert response.status_code == 422
    assert message in response.content.decode()
    assert saved(enterprise) is None
    assert not ActivityLog.objects.filter(action="alert_settings_changed").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("extra_emails", "not-an-email"),
        ("extra_emails", ",".join(f"p{n}@acme.test" for n in range(11))),
        ("recipients", "everyone"),
    ],
)
def test_bad_recipients_are_refused(org_admin_client, enterprise, field, value):
    response = org_admin_client.post(URL, VALID | {field: value})

    assert response.status_code == 422
    assert saved(enterprise) is None


def test_auditor_reads_but_cannot_save(auditor_client, enterprise):
    page = auditor_client.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Save notification settings" not in html and "disabled" in html

    assert auditor_client.post(URL, VALID).status_code == 403
    assert saved(enterprise) is None


def test_member_is_refused(member_client, enterprise):
    assert member_client.get(URL).status_code == 403
    assert member_client.post(URL, VALID).status_code == 403
    assert saved(enterprise) is None


def test_other_enterprises_admin_changes_only_their_own(
    other_admin_client, other_enterprise, enterprise, org_admin_client
):
    AlertSettings.objects.create(enterprise=enterprise, thresholds=[50])

    assert other_admin_client.post(URL, VALID).status_code == 302

    assert saved(enterprise).thresholds == [50]
    assert saved(other_enterprise).thresholds == [75, 90, 100]
    assert 'value="50"' in org_admin_client.get(URL).content.decode()


def _alert(enterprise, user, n: int) -> UsageAlert:
    return UsageAlert.objects.create(
        enterprise=enterprise,
        user=user,
        pool="inference" if user else "training",
        threshold=80,
        period=dt.date(2026, 1, 1) + dt.timedelta(days=31 * n),
        cap=1_000,
        used=800 + n,
        created_at=timezone.now() - dt.timedelta(minutes=n),
    )


def test_dashboard_lists_the_last_alerts_with_a_fixed_query_count(
    org_admin_client, enterprise, other_enterprise
):
    user = factories.make_user("capped@acme.test", enterprise=enterprise, inference=1_000)
    stranger = factories.make_user("x@globex.test", enterprise=other_enterprise, inference=10)
    _alert(other_enterprise, stranger, 0)
    _alert(enterprise, None, 0)

    with CaptureQueriesContext(connection) as few:
        page = org_admin_client.get("/org/").content.decode()
    assert "The training pool reached" in page and "x@globex.test" not in page

    for n in range(1, 12):
        _alert(enterprise, user, n)
    cache.clear()  # the Dashboard keeps its forecast sums a minute: count the same work twice
    with CaptureQueriesContext(connection) as many:
        page = org_admin_client.get("/org/").content.decode()

    assert len(many) == len(few)
    assert page.count("capped@acme.test reached") == 4  # the last five: pool alert + 4
    assert "Waiting" in page


def test_dashboard_without_alerts_says_so(org_admin_client):
    assert 'data-testid="no-alerts"' in org_admin_client.get("/org/").content.decode()
