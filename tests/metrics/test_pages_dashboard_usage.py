"""The Dashboard's usage section: this month's inference against the purchased capacity."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from django.conf import settings

from metrics import queries
from tests import factories
from tests.metrics.helpers import add_usage, make_purchase

pytestmark = pytest.mark.django_db


def this_month(enterprise) -> date:
    return queries.month_start(enterprise)


def test_dashboard_shows_this_month_against_capacity(org_admin_client, enterprise, member):
    make_purchase(enterprise, inference=2_000_000, training=1_000)
    add_usage(member, this_month(enterprise), inference=500_000, embedding=7)
    body = org_admin_client.get("/org/").content.decode()
    section = re.search(r'data-testid="dashboard-usage">(.*?)</section>', body, re.S)[1]
    assert re.search(r'data-testid="month-inference">500,000<', section)
    assert "25.0% of 2,000,000 monthly capacity" in section
    assert "1,500,000" in section  # capacity left


def test_capacity_is_the_purchase_ledger_sum(enterprise):
    make_purchase(enterprise, inference=3_000_000)
    make_purchase(enterprise, inference=-500_000)
    assert queries.dashboard_usage(enterprise).capacity == 2_500_000


def test_the_dashboard_sums_the_purchase_ledger_once(
    org_admin_client, enterprise, member, django_assert_max_num_queries
):
    make_purchase(enterprise, inference=3_000_000, training=10)
    make_purchase(enterprise, inference=-500_000)
    add_usage(member, this_month(enterprise), inference=250_000)

    with django_assert_max_num_queries(40) as page:
        body = org_admin_client.get("/org/").content.decode()

    section = re.search(r'data-testid="dashboard-usage">(.*?)</section>', body, re.S)[1]
    assert "10.0% of 2,500,000 monthly capacity" in section
    ledger = [q for q in page.captured_queries if "tokens_tokenpurchase" in q["sql"]]
    assert len(ledger) == 1


def test_previous_months_do_not_count_as_this_month(enterprise, member):
    month = date(2025, 6, 1)
    add_usage(member, date(2025, 5, 1), inference=900)
    add_usage(member, month, inference=100)
    usage = queries.dashboard_usage(enterprise, today=date(2025, 6, 17))
    assert (usage.month, usage.inference, usage.previous_inference) == (month, 100, 900)


def test_over_capacity_is_shown_as_overage(org_admin_client, enterprise, member):
    make_purchase(enterprise, inference=1_000)
    add_usage(member, this_month(enterprise), inference=1_250)
    usage = queries.dashboard_usage(enterprise)
    assert (usage.over_capacity, usage.overage, usage.bar_percent) == (True, 250, 100)
    body = org_admin_client.get("/org/").content.decode()
    assert "Over capacity by" in body


def test_over_capacity_card_is_red_because_the_dashboard_loads_its_stylesheet(
    org_admin_client, enterprise, member
):
    """The card's stat-danger class is styled by a stylesheet the page links; without the
    link the card would be grey."""
    make_purchase(enterprise, inference=1_000)
    add_usage(member, this_month(enterprise), inference=1_250)
    body = org_admin_client.get("/org/").content.decode()
    assert re.search(r'class="stat [^"]*\bstat-danger\b', body)
    linked = re.findall(r'<link rel="stylesheet" href="/static/(css/[\w.-]+\.css)">', body)
    assert "css/metrics.css" in linked
    styles = "".join((settings.BASE_DIR / "static" / name).read_text() for name in linked)
    assert re.search(r"\.stat-danger\s*\{[^}]*var\(--danger\)", styles)


def test_training_pool_counts_lifetime_embedding(enterprise, member):
    make_purchase(enterprise, training=10_000)
    add_usage(member, date(2024, 1, 1), embedding=1_000)
    add_usage(member, date(2025, 1, 1), embedding=1_500)
    usage = queries.dashboard_usage(enterprise, today=date(2025, 1, 2))
    assert (usage.training_used, usage.training_percent) == (2_500, 25)


def test_users_over_allocation_this_month_are_counted(org_admin_client, enterprise):
    month = this_month(enterprise)
    heavy = factories.make_user("heavy@acme.test", enterprise=enterprise, inference=200_000)
    light = factories.make_user("light@acme.test", enterprise=enterprise, inference=200_000)
    add_usage(heavy, month, inference=200_001)
    add_usage(light, month, inference=200_000)
    assert queries.dashboard_usage(enterprise).users_over_allocation == 1
    assert "1 user went over" in org_admin_client.get("/org/").content.decode()


def test_month_follows_the_enterprise_time_zone():
    auckland = factories.make_enterprise("Kiwi", time_zone="Pacific/Auckland")
    honolulu = factories.make_enterprise("Aloha", time_zone="Pacific/Honolulu")
    now = datetime(2025, 1, 31, 12, 30, tzinfo=UTC)  # 01:30 on 1 Feb in Auckland
    assert queries.month_start(auckland, now) == date(2025, 2, 1)
    assert queries.month_start(honolulu, now) == date(2025, 1, 1)


def test_other_enterprise_usage_is_not_on_my_dashboard(org_admin_client, enterprise):
    other = factories.make_enterprise("Initech")
    stranger = factories.make_user("s@initech.test", enterprise=other)
    add_usage(stranger, this_month(other), inference=4_444_444)
    assert "4,444,444" not in org_admin_client.get("/org/").content.decode()
