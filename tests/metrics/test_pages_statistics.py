"""Token Statistics and Monthly Data: figures equal the roll-ups, spikes stand out."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.db.models import Sum

from metrics import queries
from metrics.models import EnterpriseMonthlyUsage
from tests import factories
from tests.metrics.helpers import add_history, add_usage

pytestmark = pytest.mark.django_db

# Session, user, OTP device and enterprise (any console request) + one grouped roll-up read
# + the sidebar's count of open token requests (admins).
STATS_PAGE_MAX_QUERIES = 6
# Monthly Data also reads the closed months' statement totals ("adjusted after close").
MONTHLY_MAX_QUERIES = STATS_PAGE_MAX_QUERIES + 1


def cells(html: str, period_attr: str) -> list[str]:
    """The text of the <td>s of the row with data-period="..."."""
    row = re.search(rf'<tr[^>]*data-period="{period_attr}"[^>]*>(.*?)</tr>', html, re.S)
    assert row, f"no row for {period_attr}"
    return [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row[1], re.S)
    ]


def row_tag(html: str, period: str) -> str:
    return re.search(rf'<tr[^>]*data-period="{period}"[^>]*>', html)[0]


def is_spike_row(html: str, period: str) -> bool:
    return re.search(r'class="[^"]*\bspike\b', row_tag(html, period)) is not None


def row_html(html: str, period: str) -> str:
    return re.search(rf'<tr[^>]*data-period="{period}"[^>]*>.*?</tr>', html, re.S)[0]


def lifetime_sum(enterprise) -> int:
    sums = EnterpriseMonthlyUsage.objects.filter(enterprise=enterprise).aggregate(
        i=Sum("inference_tokens"), e=Sum("embedding_tokens")
    )
    return sums["i"] + sums["e"]


# --- Token Statistics ---------------------------------------------------------------------


def test_statistics_yearly_subtotals_equal_rollup_sums(org_admin_client, enterprise, member):
    add_history(member, date(2024, 11, 1), [(1_000, 10), (2_000, 20), (3_000, 30), (4_000, 40)])
    body = org_admin_client.get("/org/token-statistics/").content.decode()
    year_2024 = re.search(r'data-year="2024">(.*?)</tr>', body, re.S)[1]
    year_2025 = re.search(r'data-year="2025">(.*?)</tr>', body, re.S)[1]
    assert "3,000" in year_2024 and "30" in year_2024 and "3,030" in year_2024
    assert "7,000" in year_2025 and "7,070" in year_2025


def test_statistics_lifetime_total_equals_rollups(org_admin_client, enterprise, member, auditor):
    add_history(member, date(2023, 1, 1), [(123_456, 7_890)] * 14, model="gpt-4o")
    add_history(auditor, date(2023, 6, 1), [(1_111, 2_222)] * 5, model="")
    response = org_admin_client.get("/org/token-statistics/")
    lifetime = re.search(r'data-testid="lifetime-total">([\d,]+)<', response.content.decode())[1]
    assert int(lifetime.replace(",", "")) == lifetime_sum(enterprise)


def test_statistics_groups_months_under_their_year(enterprise, member):
    add_history(member, date(2024, 11, 1), [(1, 0), (2, 0), (3, 0)])
    years = queries.yearly_subtotals(queries.monthly_totals(enterprise))
    assert [(y.year, [m.month.month for m in y.months]) for y in years] == [
        (2025, [1]),
        (2024, [12, 11]),
    ]
    assert [y.total for y in years] == [3, 3]


def test_statistics_empty_enterprise_says_so(org_admin_client):
    body = org_admin_client.get("/org/token-statistics/").content.decode()
    assert "No usage has been reported" in body


@pytest.mark.parametrize("months", [5, 200])
def test_statistics_query_count_does_not_grow(
    org_admin_client, member, months, django_assert_max_num_queries
):
    add_history(member, date(2005, 1, 1), [(10, 1)] * months, model="m")
    with django_assert_max_num_queries(STATS_PAGE_MAX_QUERIES):
        assert org_admin_client.get("/org/token-statistics/").status_code == 200


# --- Monthly Data -------------------------------------------------------------------------


def test_monthly_rows_equal_rollups_per_month(org_admin_client, member, auditor):
    add_usage(member, date(2025, 3, 1), inference=1_000, embedding=500, model="a")
    add_usage(auditor, date(2025, 3, 1), inference=2_000, model="b")
    body = org_admin_client.get("/org/monthly/").content.decode()
    assert cells(body, "2025-03")[1:4] == ["3,000", "500", "3,500"]


def test_monthly_lists_months_without_usage_as_zero(org_admin_client, member):
    add_usage(member, date(2025, 1, 1), inference=5)
    add_usage(member, date(2025, 4, 1), inference=7)
    body = org_admin_client.get("/org/monthly/").content.decode()
    assert cells(body, "2025-02")[1:4] == ["0", "0", "0"]
    assert cells(body, "2025-03")[1:4] == ["0", "0", "0"]


def test_monthly_newest_first(org_admin_client, member):
    add_history(member, date(2025, 1, 1), [(1, 0), (2, 0), (3, 0)])
    body = org_admin_client.get("/org/monthly/").content.decode()
    assert body.index('data-period="2025-03"') < body.index('data-period="2025-01"')


def test_monthly_footer_totals_all_months(org_admin_client, member):
    add_history(member, date(2025, 1, 1), [(1_000, 1), (2_000, 2), (3_000, 3)])
    body = org_admin_client.get("/org/monthly/").content.decode()
    footer = re.search(r"<tfoot[^>]*>(.*?)</tfoot>", body, re.S)[1]
    assert "6,000" in footer and "6,006" in footer


def test_monthly_flags_spike_row(org_admin_client, member):
    add_history(member, date(2025, 1, 1), [(100_000, 0)] * 3 + [(200_000, 0), (100_000, 0)])
    response = org_admin_client.get("/org/monthly/")
    body = response.content.decode()
    assert is_spike_row(body, "2025-04")
    assert "badge-spike" in row_html(body, "2025-04")
    assert not is_spike_row(body, "2025-05")
    assert "badge-spike" not in row_html(body, "2025-05")
    assert re.search(r'data-testid="spike-count">1<', body)


@pytest.mark.parametrize(
    ("history", "latest", "spike"),
    [
        ([30_000, 30_000, 30_000], 45_000, False),  # exactly 1.5x the average: not above it
        ([30_000, 30_000, 30_000], 45_001, True),  # just above
        ([10_000, 20_000, 30_000], 30_001, True),  # average 20,000 -> threshold 30,000
        ([1_000, 1_000, 1_000], 9_999, False),  # far above, but under the minimum volume
        ([0, 0, 0], 10_000, True),  # from nothing to the minimum volume
        ([30_000, 30_000], 90_000, False),  # two months of history: no verdict yet
    ],
)
def test_spike_rule(enterprise, member, history, latest, spike):
    add_history(member, date(2025, 1, 1), [(n, 0) for n in [*history, latest]])
    rows = queries.monthly_totals(enterprise)
    assert rows[-1].total == latest
    assert rows[-1].spike is spike


def test_spike_rule_counts_embedding_too(enterprise, member):
    add_history(member, date(2025, 1, 1), [(20_000, 0)] * 3 + [(20_000, 20_000)])
    assert queries.monthly_totals(enterprise)[-1].spike


def test_spike_rule_counts_gap_months_as_zero(enterprise, member):
    add_usage(member, date(2025, 1, 1), inference=100_000)
    add_usage(member, date(2025, 5, 1), inference=20_000)  # Feb-Apr had nothing
    rows = queries.monthly_totals(enterprise)
    assert [r.period for r in rows] == ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05"]
    assert rows[-1].trailing_average == 0
    assert rows[-1].spike


def test_monthly_page_of_other_enterprise_is_not_mixed_in(org_admin_client, member):
    other = factories.make_enterprise("Initech")
    stranger = factories.make_user("x@initech.test", enterprise=other)
    add_usage(stranger, date(2025, 3, 1), inference=999_999)
    add_usage(member, date(2025, 3, 1), inference=1)
    body = org_admin_client.get("/org/monthly/").content.decode()
    assert "999,999" not in body
    assert cells(body, "2025-03")[1] == "1"


@pytest.mark.parametrize("months", [5, 200])
def test_monthly_query_count_does_not_grow(
    org_admin_client, member, months, django_assert_max_num_queries
):
    add_history(member, date(2005, 1, 1), [(10, 1)] * months)
    with django_assert_max_num_queries(MONTHLY_MAX_QUERIES):
        assert org_admin_client.get("/org/monthly/").status_code == 200


# --- Token Statistics: the year's chart and the year picker -------------------------------

STATS = "/org/token-statistics/"


def chart_of(html: str) -> str:
    return re.search(r'<svg[^>]*data-testid="year-chart".*?</svg>', html, re.S)[0]


def bar_titles(html: str) -> list[str]:
    return re.findall(r"<rect [^>]*><title>([^<]+)</title>", chart_of(html))


def picked(html: str) -> list[str]:
    return re.findall(r'<a href="\?year=(\d+)[^"]*" aria-current="true"', html)


def test_chart_shows_this_year_by_default_with_a_link_per_year(
    org_admin_client, enterprise, member
):
    this_year = queries.month_start(enterprise).year
    add_usage(member, date(this_year, 1, 1), inference=1_000, embedding=10)
    add_usage(member, date(2024, 3, 1), inference=5_000)
    html = org_admin_client.get(STATS).content.decode()
    assert picked(html) == [str(this_year)]
    assert f"Per month in {this_year}" in html and 'data-testid="year-note"' not in html
    assert 'href="?year=2024#year-chart-heading"' in html
    assert bar_titles(html) == [
        f"{this_year}-01: 1,000 inference tokens",
        f"{this_year}-01: 10 embedding tokens",
    ]
    assert f"Tokens per month in {this_year}" in chart_of(html)


def test_year_param_charts_that_years_twelve_months(org_admin_client, member):
    add_history(member, date(2024, 11, 1), [(1_000, 0), (2_000, 20), (3_000, 0)])
    html = org_admin_client.get(STATS, {"year": "2024"}).content.decode()
    assert picked(html) == ["2024"]
    assert bar_titles(html) == [
        "2024-11: 1,000 inference tokens",
        "2024-12: 2,000 inference tokens",
        "2024-12: 20 embedding tokens",
    ]
    assert "3,020 tokens in the year" in chart_of(html)
    labels = re.findall(r"<text [^>]*>([A-Z][a-z]{2})</text>", chart_of(html))
    assert labels == ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                      "Nov", "Dec"]  # fmt: skip


@pytest.mark.parametrize(
    ("asked", "note"),
    [
        ("abc", "That is not a year"),
        ("2024abc", "That is not a year"),
        ("-2024", "That is not a year"),
        ("٢٠٢٤", "That is not a year"),  # digits, but not ASCII ones
        ("99999999999999999999", "That is not a year"),
        ("<script>alert(1)</script>", "That is not a year"),
        ("1999", "No usage was reported in 1999"),
        ("0000", "No usage was reported in 0"),
    ],
)
def test_bad_or_unknown_year_falls_back_to_this_year_with_a_note(
    org_admin_client, enterprise, member, asked, note
):
    add_usage(member, date(2024, 3, 1), inference=5_000)
    this_year = queries.month_start(enterprise).year
    response = org_admin_client.get(STATS, {"year": asked})
    assert response.status_code == 200
    html = response.content.decode()
    assert f"{note}; showing {this_year}." in html
    assert picked(html) == [str(this_year)]
    assert "<script>alert" not in html
    if note == "That is not a year":  # what was typed is never repeated
        assert asked not in html


def test_repeated_year_param_uses_the_last_one(org_admin_client, member):
    add_usage(member, date(2024, 3, 1), inference=5_000)
    html = org_admin_client.get(STATS + "?year=abc&year=2024").content.decode()
    assert picked(html) == ["2024"] and 'data-testid="year-note"' not in html


def test_other_enterprises_years_and_figures_are_not_shown(
    org_admin_client, enterprise, member, other_admin
):
    add_usage(member, date(2024, 3, 1), inference=5_000)
    add_usage(other_admin, date(2023, 6, 1), inference=777_777, embedding=1)
    html = org_admin_client.get(STATS, {"year": "2023"}).content.decode()
    assert "No usage was reported in 2023" in html
    assert "?year=2023" not in html and "777,777" not in html and "777,778" not in html
    mine = org_admin_client.get(STATS, {"year": "2024"}).content.decode()
    assert bar_titles(mine) == ["2024-03: 5,000 inference tokens"]


@pytest.mark.parametrize("months", [5, 200])
def test_statistics_query_count_with_a_year_does_not_grow(
    org_admin_client, member, months, django_assert_max_num_queries
):
    add_history(member, date(2005, 1, 1), [(10, 1)] * months, model="m")
    with django_assert_max_num_queries(STATS_PAGE_MAX_QUERIES):
        assert org_admin_client.get(STATS, {"year": "2005"}).status_code == 200
