"""Burn-rate forecast: at the recent daily rate, when does an allocation or a pool run out?

The rate is a trimmed mean over the day roll-up (DailyUsage): the last WINDOW_DAYS complete
days in the enterprise's time zone (today is still running, so it is left out), days without
usage counting as zero, and the busiest of those days dropped, so a single spike cannot drag
the date forward. A zero rate gives no forecast rather than "never" or a division by zero.

The arithmetic is integer only and is written twice on purpose: once in SQL (the Users
table sorts by it, one query per page) and once in Python (Dashboard); both use
`days_left`'s formula and the tests hold them to the same answers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import (
    BigIntegerField,
    Case,
    F,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, NullIf

from accounts.models import Enterprise
from asksage_admin.core.formats import RUNS_OUT_REACHED
from metrics.models import DailyUsage
from metrics.quota import next_month

WINDOW_DAYS = 14
# Beyond this the date says nothing useful ("lasts until 2391").
HORIZON_DAYS = 10 * 366

METHOD = (
    f"Forecasts use the average daily use of the last {WINDOW_DAYS} full days (in the "
    "enterprise's time zone; days without use count as zero), leaving out the single busiest "
    "day so that one spike does not move the date. No forecast is shown while that rate is zero."
)

REACHED = RUNS_OUT_REACHED  # runs_out_days when the allocation is already used up


def window(today: dt.date) -> tuple[dt.date, dt.date]:
    """The complete days the rate is taken from: the WINDOW_DAYS before `today`."""
    return today - dt.timedelta(days=WINDOW_DAYS), today - dt.timedelta(days=1)


def trimmed_total(daily: list[int]) -> int:
    """Sum of the window's days without its busiest one (missing days are zeros)."""
    return sum(daily) - max(daily, default=0)


def days_left(remaining: int, trimmed: int) -> int | None:
    """Whole days after today before `remaining` tokens are gone: 0 means during today.

    Rate = trimmed / (WINDOW_DAYS - 1) a day; the last token goes on day
    ceil(remaining / rate) - 1, computed as (remaining * (W - 1) - 1) // trimmed.
    None when the rate is zero, REACHED when nothing is left.
    """
    if remaining <= 0:
        return REACHED
    if trimmed <= 0:
        return None
    return (remaining * (WINDOW_DAYS - 1) - 1) // trimmed


def month_end(today: dt.date) -> dt.date:
    return next_month(today.replace(day=1)) - dt.timedelta(days=1)


def user_runs_out_days(today: dt.date) -> Case:
    """SQL of `days_left` for each user's monthly inference allocation (users_with_usage).

    Needs the `month_inference` annotation. One correlated subquery on the (user, day)
    index; NULL (no forecast) for users without an allocation or without recent use.
    """
    first, last = window(today)
    recent = (
        DailyUsage.objects.filter(user=OuterRef("pk"), day__gte=first, day__lte=last)
        .order_by()
        .values("user")
        .annotate(trimmed=Sum("inference_tokens") - Max("inference_tokens"))
        .values("trimmed")
    )
    remaining = F("max_inference_tokens") - F("month_inference")
    return Case(
        When(max_inference_tokens__lte=0, then=Value(None)),
        When(Q(month_inference__gte=F("max_inference_tokens")), then=Value(REACHED)),
        default=(remaining * (WINDOW_DAYS - 1) - 1)
        # SUM of a BIGINT is NUMERIC in PostgreSQL: cast, so the division stays integer.
        / NullIf(Cast(Subquery(recent), BigIntegerField()), Value(0)),
        output_field=BigIntegerField(),
    )


@dataclass(frozen=True)
class PoolForecast:
    """When one of the enterprise's pools runs out at the recent rate."""

    remaining: int
    daily_rate: int  # tokens a day, rounded down, for display
    days: int | None  # days_left(); None: no forecast
    runs_out_on: dt.date | None
    within_month: bool  # the monthly capacity: does it run out before it renews?

    @property
    def reached(self) -> bool:
        return self.days == REACHED

    @property
    def beyond_horizon(self) -> bool:
        return self.days is not None and self.days > HORIZON_DAYS


def _pool(remaining: int, trimmed: int, today: dt.date, *, monthly: bool) -> PoolForecast:
    days = days_left(remaining, trimmed)
    on = today + dt.timedelta(days=max(days, 0)) if days is not None else None
    if days is not None and days > HORIZON_DAYS:
        on = None
    within = on is not None and on <= month_end(today) if monthly else True
    return PoolForecast(
        remaining=remaining,
        daily_rate=max(trimmed, 0) // (WINDOW_DAYS - 1),
        days=days,
        runs_out_on=on,
        within_month=within,
    )


@dataclass(frozen=True)
class EnterpriseForecast:
    inference: PoolForecast | None  # None: no monthly capacity purchased
    training: PoolForecast | None  # None: no training pool purchased
    window_first: dt.date
    window_last: dt.date
    method: str = METHOD


# How long the Dashboard reuses an enterprise's window sums (seconds).
WINDOW_SUMS_SECONDS = 60


def _window_days(enterprise_id: int, first: dt.date, last: dt.date) -> list[tuple[int, int]]:
    """(inference, embedding) of each window day with usage, kept a minute per worker.

    The window ends yesterday, so today's events never change it; only a late event for a
    past day (or a new day, which is a new key) does. Summing it reads every user's day
    roll-ups (~22,000 index entries, 5 ms at 10,000 users) on each Dashboard.
    """
    key = f"enterprise-window-sums:{enterprise_id}:{first}:{last}"
    found = cache.get(key)
    if found is None:
        found = [
            (int(inference), int(embedding))
            for inference, embedding in DailyUsage.objects.filter(
                enterprise_id=enterprise_id, day__gte=first, day__lte=last
            )
            .values("day")
            .annotate(inference=Sum("inference_tokens"), embedding=Sum("embedding_tokens"))
            .order_by()
            .values_list("inference", "embedding")
        ]
        cache.set(key, found, WINDOW_SUMS_SECONDS)
    return found


def enterprise_forecast(
    enterprise: Enterprise,
    *,
    capacity: int,
    month_inference: int,
    training_purchased: int,
    training_used: int,
    today: dt.date,
) -> EnterpriseForecast:
    """The Dashboard's two forecasts from one query over the enterprise's window days."""
    first, last = window(today)
    inference_days, embedding_days = [], []
    for inference, embedding in _window_days(enterprise.pk, first, last):
        inference_days.append(inference)
        embedding_days.append(embedding)
    return EnterpriseForecast(
        inference=(
            _pool(capacity - month_inference, trimmed_total(inference_days), today, monthly=True)
            if capacity > 0
            else None
        ),
        training=(
            _pool(
                training_purchased - training_used,
                trimmed_total(embedding_days),
                today,
                monthly=False,
            )
            if training_purchased > 0
            else None
        ),
        window_first=first,
        window_last=last,
    )
