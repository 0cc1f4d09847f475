"""/settings/ shows a member their allocation, this month's usage, what is left and the reset."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from tests import factories
from tests.metrics.usage_helpers import Api, event, make_key

pytestmark = pytest.mark.django_db


def next_reset(zone: str) -> date:
    today = timezone.localtime(timezone.now(), ZoneInfo(zone)).date()
    return date(today.year + today.month // 12, today.month % 12 + 1, 1)


def usage_section(client) -> str:
    page = client.get("/settings/").content.decode()
    return page[page.index('id="usage"') :]


@pytest.fixture
def capped(enterprise):
    return factories.make_user(
        "capped@acme.test", enterprise=enterprise, inference=250_000, embedding=1_000_000
    )


def test_member_sees_allocation_usage_remaining_and_reset(capped):
    Api(make_key()[1]).events(
        [
            event("now", capped.email, tokens=40_000, occurred_at=timezone.now().isoformat()),
            event("old", capped.email, tokens=99_999, occurred_at="2025-01-10T00:00:00Z"),
            event("emb", capped.email, kind="embedding", tokens=300_000),
        ]
    )

    section = usage_section(factories.signed_in_client(capped))

    assert "250,000" in section  # monthly allocation
    assert "40,000" in section  # used this month (last year's usage is not counted)
    assert "210,000" in section  # remaining
    assert next_reset("UTC").strftime("%-d %b %Y") in section
    assert "300,000" in section and "700,000" in section  # lifetime embedding used / left


def test_reset_date_is_in_the_enterprise_time_zone():
    tokyo = factories.make_enterprise("Tokyo KK", time_zone="Asia/Tokyo")
    user = factories.make_user("jp@example.com", enterprise=tokyo, inference=200_000)

    section = usage_section(factories.signed_in_client(user))

    assert next_reset("Asia/Tokyo").strftime("%-d %b %Y") in section
    assert "Asia/Tokyo" in section


def test_overage_is_shown(capped):
    Api(make_key()[1]).events(
        [event("big", capped.email, tokens=300_000, occurred_at=timezone.now().isoformat())]
    )

    section = usage_section(factories.signed_in_client(capped))

    assert "50,000 over the allocation" in section


def test_user_without_enterprise_is_told_there_is_no_allocation(db):
    loner = factories.make_user("loner@example.com")

    section = usage_section(factories.signed_in_client(loner))

    assert "no token allocation" in section


def test_admin_sees_own_usage_too(org_admin_client):
    assert "Used this month" in usage_section(org_admin_client)


def test_member_usage_panel_names_the_sales_contact(member_client):
    body = member_client.get("/settings/").content.decode()
    panel = body[body.index('id="usage"') :]
    assert 'contact us at <a href="mailto:sales@asksage.ai">sales@asksage.ai</a>' in panel
