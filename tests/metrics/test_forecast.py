"""Burn-rate forecast (metrics.forecast): flat, zero, rising and spiky histories, in Python
(Dashboard) and in SQL (the Users table's sortable "Runs out" column), which must agree."""

from __future__ import annotations

import datetime as dt
import random
import re

import pytest
from django.utils import timezone

from asksage_admin.core.formats import day, runs_out
from metrics import forecast
from metrics.forecast import REACHED, WINDOW_DAYS, days_left, trimmed_total
from metrics.models import DailyUsage, MonthlyUsage
from metrics.user_usage import users_with_usage
from tests import factories
from tests.metrics.helpers import add_usage
from tokens.models import TokenPurchase

TODAY = dt.date(2026, 6, 10)
NOW = dt.datetime(2026, 6, 10, 12, 0, tzinfo=dt.UTC)
FLAT = [1000] * WINDOW_DAYS
RISING = [100 * k for k in range(1, WINDOW_DAYS + 1)]
SPIKY = [1000] * 3 + [50_000] + [1000] * (WINDOW_DAYS - 4)


# -- the arithmetic ---------------------------------------------------------------------


def test_flat_history_runs_out_when_the_remainder_is_spent():
    # 1,000 a day, 11,000 left at the start of today: gone at the end of the 11th day
    # counting today, i.e. 10 days after today.
    assert days_left(11_000, trimmed_total(FLAT)) == 10
    assert days_left(500, trimmed_total(FLAT)) == 0  # during today
    assert days_left(1000, trimmed_total(FLAT)) == 0
    assert days_left(1001, trimmed_total(FLAT)) == 1


def test_zero_history_gives_no_forecast():
    assert days_left(11_000, trimmed_total([0] * WINDOW_DAYS)) is None
    assert days_left(11_000, trimmed_total([])) is None
    # One day of use in two weeks is that day's spike, not a rate.
    assert days_left(11_000, trimmed_total([5000])) is None


def test_nothing_left_is_reached_whatever_the_rate():
    assert days_left(0, trimmed_total(FLAT)) == REACHED
    assert days_left(-5, 0) == REACHED


def test_rising_history_uses_the_trimmed_mean():
    # 100..1,400: the 1,400 day is dropped, the rest average 700 a day.
    assert trimmed_total(RISING) == 9100
    assert days_left(6000, trimmed_total(RISING)) == 8  # 6,000 / 700 = 8.6 days


def test_one_spike_does_not_move_the_date():
    assert trimmed_total(SPIKY) == trimmed_total(FLAT)
    assert days_left(11_000, trimmed_total(SPIKY)) == days_left(11_000, trimmed_total(FLAT))
    # A plain mean would have said 2 days.
    assert 11_000 // (sum(SPIKY) // WINDOW_DAYS) == 2


def test_runs_out_cell_text():
    assert runs_out(None, TODAY) == "—"
    assert runs_out(REACHED, TODAY) == "Cap reached"
    assert runs_out(10, TODAY) == "20 Jun"
    assert runs_out(20, TODAY) == "30 Jun"
    assert runs_out(21, TODAY) == "Not this month"  # the allocation renews on 1 Jul


# -- the SQL twin (Users table) -----------------------------------------------------------


def history(user, amounts: list[int], today: dt.date = TODAY) -> None:
    """`amounts` for the window's days, oldest first, plus a day on each side that must not
    count: today (still running) and the day before the window."""
    first, _last = forecast.window(today)
    rows = [
        DailyUsage(
            user=user,
            enterprise=user.enterprise,
            day=first + dt.timedelta(days=n),
            inference_tokens=tokens,
        )
        for n, tokens in enumerate(amounts)
        if tokens
    ]
    rows.append(
        DailyUsage(user=user, enterprise=user.enterprise, day=today, inference_tokens=10**9)
    )
    rows.append(
        DailyUsage(
            user=user,
            enterprise=user.enterprise,
            day=first - dt.timedelta(days=1),
            inference_tokens=1,
        )
    )
    DailyUsage.objects.bulk_create(rows)


def this_month(user, tokens: int, today: dt.date = TODAY) -> None:
    MonthlyUsage.objects.create(
        user=user, enterprise=user.enterprise, month=today.replace(day=1), inference_tokens=tokens
    )


def sql_days(enterprise, now=NOW) -> dict[str, int | None]:
    return dict(users_with_usage(enterprise, now).values_list("email", "runs_out_days"))


@pytest.mark.django_db
def test_sql_forecast_on_each_history(enterprise):
    def person(name: str, cap: int, used: int, amounts: list[int]):
        user = factories.make_user(f"{name}@acme.test", enterprise=enterprise, inference=cap)
        this_month(user, used)
        history(user, amounts)

    person("flat", 20_000, 9_000, FLAT)
    person("zero", 20_000, 0, [0] * WINDOW_DAYS)
    person("rising", 15_000, 9_000, RISING)
    person("spiky", 20_000, 9_000, SPIKY)
    person("reached", 5_000, 5_000, FLAT)
    person("unallocated", 0, 0, FLAT)

    assert sql_days(enterprise) == {
        "flat@acme.test": 10,
        "zero@acme.test": None,
        "rising@acme.test": 8,
        "spiky@acme.test": 10,
        "reached@acme.test": REACHED,
        "unallocated@acme.test": None,
    }


@pytest.mark.django_db
def test_sql_and_python_agree_on_random_histories(enterprise):
    rng = random.Random(16)
    expected = {}
    for n in range(30):
        cap = rng.choice([0, 1000, 50_000, 10**7])
        used = rng.randrange(0, 60_000)
        amounts = [
            rng.choice([0, 0, rng.randrange(1, 9000), rng.randrange(1, 10**6)])
            for _ in range(WINDOW_DAYS)
        ]
        user = factories.make_user(f"r{n}@acme.test", enterprise=enterprise, inference=cap)
        this_month(user, used)
        history(user, amounts)
        expected[user.email] = None if cap <= 0 else days_left(cap - used, trimmed_total(amounts))

    assert sql_days(enterprise) == expected


@pytest.mark.django_db
def test_window_is_in_the_enterprise_time_zone():
    """At 20:00 UTC on 9 June it is already 10 June in Tokyo: the window moves a day."""
    enterprise = factories.make_enterprise("Nippon", time_zone="Asia/Tokyo")
    user = factories.make_user("k@nippon.test", enterprise=enterprise, inference=20_000)
    this_month(user, 9_000)
    history(user, FLAT)  # window of 10 June (local)

    tokyo_evening = dt.datetime(2026, 6, 9, 20, 0, tzinfo=dt.UTC)
    utc_noon = dt.datetime(2026, 6, 9, 12, 0, tzinfo=dt.UTC)  # 21:00 on 9 June in Tokyo

    assert sql_days(enterprise, tokyo_evening) == {"k@nippon.test": 10}
    # Still 9 June in Tokyo: the window ends a day earlier, with the 1-token day before it.
    assert sql_days(enterprise, utc_noon) == {"k@nippon.test": days_left(11_000, 12_001)}
    assert days_left(11_000, 12_001) == 11


# -- the pages ----------------------------------------------------------------------------


def _today(enterprise) -> dt.date:
    return timezone.localdate(timezone=enterprise.tzinfo)


@pytest.fixture
def forecast_users(enterprise):
    today = _today(enterprise)
    made = {}
    for name, cap, used, amounts in [
        ("a-flat", 10**9, 9_000, FLAT),
        ("b-zero", 20_000, 0, [0] * WINDOW_DAYS),
        ("c-reached", 5_000, 6_000, FLAT),
        ("d-soon", 9_500, 9_000, FLAT),
        ("e-spiky", 10**9, 9_000, SPIKY),
    ]:
        user = factories.make_user(f"{name}@acme.test", enterprise=enterprise, inference=cap)
        this_month(user, used, today)
        history(user, amounts, today)
        made[name] = user
    return made


def _column(response, index: int) -> list[str]:
    html = response.content.decode()
    rows = re.findall(r'<tr data-user-id="\d+"[^>]*>(.*?)</tr>', html, re.S)
    return [
        re.sub(r"<[^>]+>", "", re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[index]).strip()
        for row in rows
    ]


def _emails(response) -> list[str]:
    return re.findall(r'<a href="/org/users/\d+/">([^<]+)</a>', response.content.decode())


@pytest.mark.django_db
def test_users_table_shows_runs_out(org_admin_client, enterprise, forecast_users):
    today = _today(enterprise)
    response = org_admin_client.get("/org/users/", {"q": "acme.test"})
    html = response.content.decode()

    assert ">Runs out<" in html or "Runs out</a>" in html
    assert "last 14 full days" in html  # the method, on the page
    cells = dict(zip(_emails(response), _column(response, 9), strict=True))
    assert cells["b-zero@acme.test"] == "—"
    assert cells["c-reached@acme.test"] == "Cap reached"
    assert cells["d-soon@acme.test"] == runs_out(0, today) == f"{today.day} {today:%b}"
    far = days_left(10**9 - 9_000, 13_000)
    assert cells["a-flat@acme.test"] == runs_out(far, today) == "Not this month"
    assert cells["e-spiky@acme.test"] == cells["a-flat@acme.test"]


@pytest.mark.django_db
def test_users_table_sorts_by_runs_out_with_no_forecast_last(
    org_admin_client, org_admin, auditor, forecast_users
):
    ascending = _emails(org_admin_client.get("/org/users/", {"sort": "runs_out_days"}))
    descending = _emails(org_admin_client.get("/org/users/", {"sort": "-runs_out_days"}))

    assert ascending[:4] == [
        "c-reached@acme.test",
        "d-soon@acme.test",
        "a-flat@acme.test",
        "e-spiky@acme.test",
    ]
    assert descending[:4] == [
        "a-flat@acme.test",
        "e-spiky@acme.test",
        "d-soon@acme.test",
        "c-reached@acme.test",
    ]
    # No forecast (no allocation, no recent use) at the end both ways, by email.
    nobody = sorted(["b-zero@acme.test", org_admin.email, auditor.email])
    assert ascending[4:] == nobody and descending[4:] == nobody


@pytest.mark.django_db
def test_users_page_queries_do_not_grow_with_forecast_rows(
    org_admin_client, enterprise, django_assert_max_num_queries
):
    def add(count: int, start: int) -> None:
        for n in range(start, start + count):
            user = factories.make_user(f"q{n}@acme.test", enterprise=enterprise, inference=10**6)
            this_month(user, 100, _today(enterprise))
            history(user, FLAT, _today(enterprise))

    add(2, 0)
    with django_assert_max_num_queries(50) as few:
        org_admin_client.get("/org/users/", {"sort": "runs_out_days"})
    add(20, 2)
    with django_assert_max_num_queries(len(few.captured_queries)):
        org_admin_client.get("/org/users/", {"sort": "runs_out_days"})


@pytest.mark.django_db
def test_dashboard_says_when_the_training_pool_runs_out(org_admin_client, enterprise, member):
    today = _today(enterprise)
    TokenPurchase.objects.create(
        enterprise=enterprise, inference_tokens=50_000, training_tokens=1_000_000, reference="PO-1"
    )
    add_usage(member, today.replace(day=1), inference=9_000, embedding=100_000)
    first, _ = forecast.window(today)
    DailyUsage.objects.bulk_create(
        DailyUsage(
            user=member,
            enterprise=enterprise,
            day=first + dt.timedelta(days=n),
            inference_tokens=1000,
            embedding_tokens=1000,
        )
        for n in range(WINDOW_DAYS)
    )

    html = org_admin_client.get("/org/").content.decode()

    until = today + dt.timedelta(days=days_left(900_000, 13_000))
    assert f"the training pool lasts until <strong>{day(until)}</strong>" in html
    inference_day = today + dt.timedelta(days=days_left(41_000, 13_000))
    if inference_day.month == today.month:
        assert f"capacity runs out on <strong>{day(inference_day)}</strong>" in html
    else:
        assert "capacity lasts the month" in html
    assert "leaving out the single busiest day" in html


@pytest.mark.django_db
def test_dashboard_gives_no_forecast_without_recent_use(org_admin_client, enterprise):
    TokenPurchase.objects.create(
        enterprise=enterprise, inference_tokens=50_000, training_tokens=1_000_000, reference="PO-1"
    )

    html = org_admin_client.get("/org/").content.decode()

    assert "no forecast for the training pool" in html
    assert "no forecast for this month" in html


@pytest.mark.django_db
def test_the_dashboard_sums_the_window_once_a_minute(
    org_admin_client, enterprise, member, other_enterprise, django_assert_max_num_queries
):
    """The window ends yesterday: today's events never move it, so a worker keeps its sums a
    minute instead of reading every user's day roll-ups on each Dashboard; a new day is a new
    window, and another enterprise's window is its own."""
    today = _today(enterprise)
    first, last = forecast.window(today)
    stranger = factories.make_user(enterprise=other_enterprise)
    for who, tokens in ((member, 1_300), (stranger, 6_500)):
        for offset in (0, 1):  # two days: the busiest one is left out of the rate
            DailyUsage.objects.create(
                user=who,
                enterprise=who.enterprise,
                day=first + dt.timedelta(days=offset),
                inference_tokens=tokens,
            )

    def sums(when: dt.date, of=enterprise) -> tuple[int, int]:
        result = forecast.enterprise_forecast(
            of, capacity=10**6, month_inference=0, training_purchased=0, training_used=0,
            today=when,
        )  # fmt: skip
        return result.inference.daily_rate, result.window_last.toordinal()

    assert sums(today) == (1_300 // (WINDOW_DAYS - 1), last.toordinal())  # 100 a day
    assert sums(today, other_enterprise) == (500, last.toordinal())
    # A late event for yesterday: the sums kept for the minute do not see it yet.
    DailyUsage.objects.create(user=member, enterprise=enterprise, day=last, inference_tokens=65)
    with django_assert_max_num_queries(0):
        assert sums(today)[0] == 100
    # Tomorrow's window (first day dropped, yesterday kept) is read afresh.
    tomorrow = today + dt.timedelta(days=1)
    assert sums(tomorrow) == (65 // (WINDOW_DAYS - 1), today.toordinal())
