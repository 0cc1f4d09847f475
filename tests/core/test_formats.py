"""One number and date format on the pages; CSV exports keep plain integers and ISO 8601."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.template import Context, Template

from accounts.models import Enterprise
from asksage_admin.core import formats
from asksage_admin.core.models import ActivityLog
from tests.tokens.helpers import buy

WINTER = dt.datetime(2026, 12, 1, 13, 5, 42, 123456, tzinfo=dt.UTC)
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def test_tokens_adds_thousands_separators():
    assert formats.tokens(1_000_000) == "1,000,000"
    assert formats.tokens(-250000) == "-250,000"
    assert formats.tokens(0) == "0"


def test_tokens_leaves_what_is_not_a_whole_number_alone():
    assert formats.tokens(None) == ""
    assert formats.tokens("n/a") == "n/a"
    assert formats.tokens(1.5) == "1.5"


def test_when_names_the_zone_and_drops_seconds():
    assert formats.when(WINTER, PARIS) == "1 Dec 2026, 14:05 CET"
    assert formats.when(WINTER, "Europe/Paris") == "1 Dec 2026, 14:05 CET"
    assert formats.when(WINTER.replace(month=7), "Europe/Paris") == "1 Jul 2026, 15:05 CEST"


def test_when_falls_back_to_the_current_zone_for_an_unknown_name():
    assert formats.when(WINTER, "Not/AZone") == "1 Dec 2026, 13:05 UTC"
    assert formats.when(None) == ""


def test_day_is_the_calendar_day_in_the_zone():
    late = dt.datetime(2026, 12, 1, 23, 30, tzinfo=dt.UTC)
    assert formats.day(late, "Europe/Paris") == "2 Dec 2026"
    assert formats.day(dt.date(2026, 1, 9)) == "9 Jan 2026"


def test_template_filters():
    template = Template("{% load formats %}{{ n|tokens }} | {{ t|when:tz }} | {{ t|day:tz }}")
    rendered = template.render(Context({"n": 1234567, "t": WINTER, "tz": "Europe/Paris"}))
    assert rendered == "1,234,567 | 1 Dec 2026, 14:05 CET | 1 Dec 2026"


@pytest.mark.django_db
def test_activity_page_shows_times_in_the_enterprise_zone_named(org_admin_client, enterprise):
    Enterprise.objects.filter(pk=enterprise.pk).update(time_zone="Europe/Paris")
    ActivityLog.objects.create(
        created_at=WINTER, enterprise=enterprise, action="sign_in", target="t"
    )
    body = org_admin_client.get("/org/activity/").content.decode()
    assert "1 Dec 2026, 14:05 CET" in body
    assert "14:05:42" not in body and "123456" not in body


@pytest.mark.django_db
def test_activity_export_keeps_iso_8601_with_microseconds(org_admin_client, enterprise):
    Enterprise.objects.filter(pk=enterprise.pk).update(time_zone="Europe/Paris")
    ActivityLog.objects.create(
        created_at=WINTER, enterprise=enterprise, action="sign_in", target="t"
    )
    response = org_admin_client.get("/org/exports/activity.csv")
    body = b"".join(response.streaming_content).decode()
    assert "2026-12-01T14:05:42.123456+01:00" in body


@pytest.mark.django_db
def test_staff_purchase_list_separates_thousands_and_names_the_zone(staff_client, enterprise):
    buy(enterprise, 1_000_000, 250_000)
    body = staff_client.get("/staff/tokens/tokenpurchase/").content.decode()
    assert "1,000,000" in body and "250,000" in body
    assert "1000000" not in body
    assert "a.m." not in body and "p.m." not in body
    assert " UTC" in body


@pytest.mark.django_db
def test_user_page_registered_day(org_admin_client, member):
    body = org_admin_client.get(f"/org/users/{member.pk}/").content.decode()
    assert f"<dd>{formats.day(member.date_joined)}</dd>" in body
