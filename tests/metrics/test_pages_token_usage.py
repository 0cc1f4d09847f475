"""Token Usage: inference vs embedding totals and shares, the chart, top users, models."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from metrics import queries
from tests import factories
from tests.metrics.helpers import add_history, add_usage, add_usage_rows, make_members

pytestmark = pytest.mark.django_db

# Session, user, device, enterprise + monthly, breakdown (x2: page and top-user shares),
# top users, models (the sidebar's open-request count fits in the budget).
TOKEN_USAGE_MAX_QUERIES = 9


def stat(body: str, testid: str) -> int:
    return int(re.search(rf'data-testid="{testid}">([\d,]+)<', body)[1].replace(",", ""))


def test_totals_and_shares(org_admin_client, member):
    add_usage(member, date(2025, 1, 1), inference=750_000, embedding=250_000)
    body = org_admin_client.get("/org/token-usage/").content.decode()
    assert stat(body, "inference-total") == 750_000
    assert stat(body, "embedding-total") == 250_000
    assert stat(body, "grand-total") == 1_000_000
    assert "75.0% of all tokens" in body
    assert "25.0% of all tokens" in body


def test_totals_equal_rollups_across_users_and_models(org_admin_client, member, auditor):
    add_history(member, date(2024, 1, 1), [(1_234, 567)] * 13, model="gpt-4o")
    add_history(auditor, date(2024, 6, 1), [(89, 10)] * 7, model="")
    body = org_admin_client.get("/org/token-usage/").content.decode()
    assert stat(body, "inference-total") == 1_234 * 13 + 89 * 7
    assert stat(body, "embedding-total") == 567 * 13 + 10 * 7


def test_shares_of_nothing_are_zero(enterprise):
    breakdown = queries.usage_breakdown(enterprise)
    assert (breakdown.total, breakdown.inference_share) == (0, Decimal("0.0"))


def test_shares_round_half_up_to_one_decimal(enterprise, member):
    add_usage(member, date(2025, 1, 1), inference=2, embedding=1)
    breakdown = queries.usage_breakdown(enterprise)
    assert (breakdown.inference_share, breakdown.embedding_share) == (
        Decimal("66.7"),
        Decimal("33.3"),
    )


def test_page_shows_chart_with_a_bar_per_month_and_kind(org_admin_client, member):
    add_history(member, date(2025, 1, 1), [(100, 50), (200, 0), (300, 70)])
    body = org_admin_client.get("/org/token-usage/").content.decode()
    svg = re.search(r'<svg[^>]*data-testid="usage-chart".*?</svg>', body, re.S)[0]
    bars = re.findall(r"<title>(2025-\d\d: [\d,]+ \w+ tokens)</title>", svg)
    assert bars == [
        "2025-01: 100 inference tokens",
        "2025-01: 50 embedding tokens",
        "2025-02: 200 inference tokens",
        "2025-03: 300 inference tokens",
        "2025-03: 70 embedding tokens",
    ]


def test_top_users_ordered_by_total_with_shares(enterprise, member, auditor, org_admin):
    add_usage(member, date(2025, 1, 1), inference=100)
    add_usage(auditor, date(2025, 1, 1), inference=500, embedding=100)
    add_usage(org_admin, date(2025, 2, 1), embedding=300)
    top = queries.top_users(enterprise, 10)
    assert [(u.email, u.total, u.share) for u in top] == [
        ("auditor@acme.test", 600, Decimal("60.0")),
        ("admin@acme.test", 300, Decimal("30.0")),
        ("member@acme.test", 100, Decimal("10.0")),
    ]


def test_top_users_limited_to_n(enterprise):
    for i, user in enumerate(make_members(enterprise, 12, prefix="u")):
        add_usage(user, date(2025, 1, 1), inference=1_000 + i)
    top = queries.top_users(enterprise, 10)
    assert len(top) == 10
    assert top[0].inference == 1_011


def test_top_users_leaves_out_other_enterprises_and_idle_users(org_admin_client, member):
    other = factories.make_enterprise("Initech")
    add_usage(
        factories.make_user("big@initech.test", enterprise=other), date(2025, 1, 1), inference=9
    )
    add_usage(member, date(2025, 1, 1), inference=1)
    factories.make_user("idle@acme.test", enterprise=member.enterprise)
    body = org_admin_client.get("/org/token-usage/").content.decode()
    top = re.search(r'data-testid="top-users">(.*?)</table>', body, re.S)[1]
    assert "member@acme.test" in top
    assert "big@initech.test" not in top
    assert "idle@acme.test" not in top


def test_usage_by_model_sums_months_and_names_unspecified(org_admin_client, enterprise, member):
    add_usage(member, date(2025, 1, 1), inference=100, model="gpt-4o")
    add_usage(member, date(2025, 2, 1), inference=300, model="gpt-4o")
    add_usage(member, date(2025, 2, 1), embedding=100, model="")
    rows = queries.usage_by_model(enterprise)
    assert [(m.model, m.inference, m.embedding, m.share) for m in rows] == [
        ("gpt-4o", 400, 0, Decimal("80.0")),
        ("(unspecified)", 0, 100, Decimal("20.0")),
    ]
    body = org_admin_client.get("/org/token-usage/").content.decode()
    assert (
        "(unspecified)" in re.search(r'data-testid="usage-by-model">(.*?)</table>', body, re.S)[1]
    )


@pytest.mark.parametrize("users", [5, 200])
def test_query_count_does_not_grow(
    org_admin_client, enterprise, users, django_assert_max_num_queries
):
    add_usage_rows(make_members(enterprise, users), date(2025, 1, 1), inference=10, embedding=5)
    with django_assert_max_num_queries(TOKEN_USAGE_MAX_QUERIES):
        assert org_admin_client.get("/org/token-usage/").status_code == 200
