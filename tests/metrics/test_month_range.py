"""?from=YYYY-MM&to=YYYY-MM on Token Statistics, Token Usage, Monthly Data and the Token Usage
CSV: the range is honoured, bad months get a clear message (never a 500, never everything)."""

from __future__ import annotations

import csv
import io
import re
from datetime import date

import pytest

from asksage_admin.core.models import ActivityLog
from metrics import queries
from tests import factories
from tests.metrics.helpers import add_history, add_usage, add_usage_rows, make_members
from tests.metrics.test_pages_statistics import (
    MONTHLY_MAX_QUERIES,
    STATS_PAGE_MAX_QUERIES,
    cells,
    is_spike_row,
)
from tests.metrics.test_pages_token_usage import TOKEN_USAGE_MAX_QUERIES

pytestmark = pytest.mark.django_db

PAGES = ["/org/token-statistics/", "/org/token-usage/", "/org/monthly/"]


@pytest.fixture
def history(member):
    # Nov 2025 .. Jun 2026: 100, 200, ... 800 inference tokens; 1 embedding each.
    add_history(member, date(2025, 11, 1), [(100 * (i + 1), 1) for i in range(8)])


def csv_rows(client, url: str) -> list[list[str]]:
    response = client.get(url)
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_month_range_parses_and_defaults_to_everything(enterprise, member, history):
    everything = queries.monthly_totals(enterprise)
    assert [r.period for r in everything][0] == "2025-11"
    assert len(everything) == 8
    ranged = queries.monthly_totals(
        enterprise, queries.MonthRange(date(2026, 1, 1), date(2026, 3, 1))
    )
    assert [r.period for r in ranged] == ["2026-01", "2026-02", "2026-03"]


def test_range_keeps_spike_verdicts_of_the_full_history(enterprise, member):
    add_history(member, date(2025, 1, 1), [(10_000, 0)] * 3 + [(50_000, 0)])
    full = {r.period: r.spike for r in queries.monthly_totals(enterprise)}
    ranged = queries.monthly_totals(enterprise, queries.MonthRange(date(2025, 4, 1), None))
    assert full["2025-04"] is True
    assert [(r.period, r.spike) for r in ranged] == [("2025-04", True)]


def test_range_starts_at_its_first_month_with_usage(enterprise, member):
    """Like the default, rows run from the first month with usage: the CSV's row count agrees."""
    add_usage(member, date(2025, 1, 1), inference=5)
    add_usage(member, date(2025, 6, 1), inference=7)
    months = queries.MonthRange(date(2025, 3, 1), None)
    rows = queries.monthly_totals(enterprise, months)
    assert [r.period for r in rows] == ["2025-06"]
    assert queries.monthly_row_count(enterprise, months) == 1


def test_monthly_page_honours_the_range(org_admin_client, history):
    html = org_admin_client.get("/org/monthly/?from=2026-01&to=2026-02").content.decode()
    assert cells(html, "2026-01")[1:3] == ["300", "1"]
    assert 'data-period="2026-02"' in html
    assert 'data-period="2025-12"' not in html and 'data-period="2026-03"' not in html
    assert "?from=2026-01&amp;to=2026-02" in html  # the export link carries the range


def test_statistics_page_honours_the_range(org_admin_client, history):
    html = org_admin_client.get("/org/token-statistics/?from=2026-05").content.decode()
    total = re.search(r'data-testid="lifetime-total">([^<]*)<', html)[1]
    assert total == "1,502"  # (700 + 1) + (800 + 1)
    assert "Tokens in this range" in html


def test_token_usage_page_honours_the_range(org_admin_client, enterprise, member, auditor):
    add_usage(member, date(2025, 1, 1), inference=1_000, model="old-model")
    add_usage(auditor, date(2026, 2, 1), inference=30, embedding=5, model="new-model")
    html = org_admin_client.get("/org/token-usage/?from=2026-01&to=2026-12").content.decode()
    assert re.search(r'data-testid="grand-total">([^<]*)<', html)[1] == "35"
    assert "new-model" in html and "old-model" not in html
    top = re.search(r'data-testid="top-users">(.*?)</table>', html, re.S)
    assert top is None or "member@acme.test" not in top[1]
    assert "auditor@acme.test" in html


def test_token_usage_csv_honours_the_range_and_logs_it(org_admin_client, history):
    rows = csv_rows(org_admin_client, "/org/exports/token-usage.csv?from=2026-05&to=2026-06")
    assert rows[1:] == [["2026-05", "700", "1", "701"], ["2026-06", "800", "1", "801"]]
    log = ActivityLog.objects.get(action=ActivityLog.Action.EXPORT_DOWNLOADED)
    assert log.new_value["filters"] == {"from": "2026-05", "to": "2026-06"}
    assert log.new_value["rows"] == 2


def test_token_usage_csv_default_is_everything(org_admin_client, history):
    assert len(csv_rows(org_admin_client, "/org/exports/token-usage.csv")) == 9


BAD = [
    ("from=2026-13", "Enter a month as YYYY-MM"),
    ("from=January", "Enter a month as YYYY-MM"),
    ("to=2026-1", "Enter a month as YYYY-MM"),
    ("from=0001-01", "between 1970-01 and 9998-12"),
    ("from=2026-06&to=2026-01", "The From month must be on or before the To month."),
    ("from=" + "9" * 500, "Enter a month as YYYY-MM"),
]


@pytest.mark.parametrize("url", PAGES)
@pytest.mark.parametrize(("query", "message"), BAD)
def test_bad_month_on_a_page_shows_the_error_and_no_figures(
    org_admin_client, history, url, query, message
):
    response = org_admin_client.get(f"{url}?{query}")
    html = response.content.decode()
    assert response.status_code == 200
    assert message in html
    assert "800" not in re.sub(r'value="[^"]*"', "", html)  # no figures, not everything


@pytest.mark.parametrize(("query", "message"), BAD)
def test_bad_month_on_the_export_is_a_400_and_logs_nothing(
    org_admin_client, history, query, message
):
    response = org_admin_client.get(f"/org/exports/token-usage.csv?{query}")
    assert response.status_code == 400
    assert "Invalid filter" in response.content.decode()
    assert message in response.content.decode()
    assert not ActivityLog.objects.filter(action=ActivityLog.Action.EXPORT_DOWNLOADED).exists()


def test_other_query_parameters_are_kept_and_ignored(org_admin_client, history):
    html = org_admin_client.get("/org/token-statistics/?year=2026&from=2026-06").content.decode()
    assert '<input type="hidden" name="year" value="2026">' in html


@pytest.mark.parametrize("url", ["/org/token-statistics/", "/org/monthly/"])
@pytest.mark.parametrize("months", [3, 120])
def test_ranged_page_query_count_is_fixed(
    org_admin_client, member, url, months, django_assert_max_num_queries
):
    add_history(member, date(2010, 1, 1), [(3, 1)] * months)
    budget = MONTHLY_MAX_QUERIES if url == "/org/monthly/" else STATS_PAGE_MAX_QUERIES
    with django_assert_max_num_queries(budget):
        assert org_admin_client.get(f"{url}?from=2010-02&to=2030-01").status_code == 200


@pytest.mark.parametrize("users", [5, 100])
def test_ranged_token_usage_query_count_is_fixed(
    org_admin_client, enterprise, users, django_assert_max_num_queries
):
    add_usage_rows(make_members(enterprise, users), date(2025, 1, 1), inference=10, embedding=5)
    with django_assert_max_num_queries(TOKEN_USAGE_MAX_QUERIES):
        response = org_admin_client.get("/org/token-usage/?from=2025-01&to=2025-01")
    assert response.status_code == 200


def test_spike_shown_in_range_page(org_admin_client, member):
    add_history(member, date(2025, 1, 1), [(10_000, 0)] * 3 + [(50_000, 0)])
    html = org_admin_client.get("/org/monthly/?from=2025-04").content.decode()
    assert is_spike_row(html, "2025-04")


def test_other_enterprise_range_is_own_figures_only(member, other_admin, history):
    client = factories.verified_client(other_admin)
    html = client.get("/org/monthly/?from=2025-01&to=2026-12").content.decode()
    assert 'data-period="2026-01"' not in html
