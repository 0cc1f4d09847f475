"""Roll-up reads for the statistics pages, the Dashboard and the exports.

Everything here reads EnterpriseMonthlyUsage, UsageTotal and MonthlyUsage, never the
UsageEvent ledger, so a page costs the same few queries whether an enterprise reported ten
events or ten million. Tokens are ints end to end; shares are Decimals, for display only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from django.db.models import F, Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import Enterprise
from metrics.models import EnterpriseMonthlyUsage, MonthlyUsage, UsageTotal
from metrics.quota import add_months, usage_month
from tokens.queries import PoolTotals, pool_totals

# Spike rule (Monthly Data): a month is a spike when its total is more than SPIKE_FACTOR
# times the mean total of the SPIKE_WINDOW months before it, and at least
# SPIKE_MIN_TOKENS. Months with less history than the window are never flagged, and the
# floor keeps a jump from 10 to 40 tokens in a quiet enterprise from crying wolf.
SPIKE_FACTOR = Fraction(3, 2)
SPIKE_WINDOW = 3
SPIKE_MIN_TOKENS = 10_000
SPIKE_RULE = (
    f"more than {float(SPIKE_FACTOR):g}× the average of the previous {SPIKE_WINDOW} months"
    f" and at least {SPIKE_MIN_TOKENS:,} tokens"
)

UNSPECIFIED_MODEL = "(unspecified)"


def percent(part: int, whole: int) -> Decimal:
    """part/whole as a percentage with one decimal, for display (0 when whole is 0)."""
    if not whole:
        return Decimal("0.0")
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def month_start(enterprise: Enterprise, now: datetime | None = None) -> date:
    """First day of the enterprise's current month, in its own time zone (the roll-up key)."""
    return usage_month(now or timezone.now(), enterprise.tzinfo)


def months_between(first: date, last: date) -> int:
    """How many calendar months from `first` to `last`, both included."""
    return (last.year - first.year) * 12 + last.month - first.month + 1


@dataclass(frozen=True)
class MonthRow:
    """One year-month of an enterprise's usage, with its spike verdict."""

    month: date
    inference: int
    embedding: int
    trailing_average: int | None = None
    spike: bool = False
    # Closed month whose roll-ups moved after its statement froze (metrics.statements).
    adjusted_after_close: bool = False

    @property
    def total(self) -> int:
        return self.inference + self.embedding

    @property
    def year(self) -> int:
        return self.month.year

    @property
    def period(self) -> str:
        return f"{self.month:%Y-%m}"

    @property
    def change_percent(self) -> Decimal | None:
        """How far above (or below) the trailing average this month is, in percent."""
        if not self.trailing_average:
            return None
        return percent(self.total - self.trailing_average, self.trailing_average)


@dataclass(frozen=True)
class MonthRange:
    """From/to months, both included (first days); None on a side means unbounded.

    The statistics pages and the Token Usage export take it from ?from=YYYY-MM&to=YYYY-MM
    (metrics.filters.MonthRangeFilterSet); the default, MonthRange(), is everything.
    """

    first: date | None = None
    last: date | None = None

    @property
    def is_everything(self) -> bool:
        return self.first is None and self.last is None

    def q(self, prefix: str = "") -> Q:
        """The range as a filter on a `month` field (`prefix` for a related one)."""
        condition = Q()
        if self.first is not None:
            condition &= Q(**{f"{prefix}month__gte": self.first})
        if self.last is not None:
            condition &= Q(**{f"{prefix}month__lte": self.last})
        return condition

    def as_filters(self) -> dict[str, str]:
        """For an export's log row: what the file was limited to."""
        out = {}
        if self.first is not None:
            out["from"] = f"{self.first:%Y-%m}"
        if self.last is not None:
            out["to"] = f"{self.last:%Y-%m}"
        return out


EVERYTHING = MonthRange()


def _monthly_queryset(enterprise: Enterprise, months: MonthRange = EVERYTHING) -> QuerySet:
    # Served by the (enterprise, month, model) unique index: one grouped scan per page.
    return (
        EnterpriseMonthlyUsage.objects.filter(months.q(), enterprise=enterprise)
        .values("month")
        .annotate(inference=Sum("inference_tokens"), embedding=Sum("embedding_tokens"))
        .order_by("month")
    )


def _fill_gaps(rows: Iterable[MonthRow]) -> Iterator[MonthRow]:
    """Insert zero rows for months without usage, so every year-month has its row."""
    previous: date | None = None
    for row in rows:
        if previous is not None:
            gap = add_months(previous, 1)
            while gap < row.month:
                yield MonthRow(month=gap, inference=0, embedding=0)
                gap = add_months(gap, 1)
        yield row
        previous = row.month


def _with_spikes(rows: Iterable[MonthRow]) -> Iterator[MonthRow]:
    """Attach the trailing average and spike flag; keeps only SPIKE_WINDOW totals in memory."""
    window: deque[int] = deque(maxlen=SPIKE_WINDOW)
    for row in rows:
        average = None
        spike = False
        if len(window) == SPIKE_WINDOW:
            trailing_sum = sum(window)
            average = trailing_sum // SPIKE_WINDOW
            # total > factor * (sum / window), in integers: total * window * den > num * sum.
            spike = row.total >= SPIKE_MIN_TOKENS and (
                row.total * SPIKE_WINDOW * SPIKE_FACTOR.denominator
                > SPIKE_FACTOR.numerator * trailing_sum
            )
        window.append(row.total)
        yield MonthRow(row.month, row.inference, row.embedding, average, spike)


def iter_monthly_totals(
    enterprise: Enterprise, months: MonthRange = EVERYTHING
) -> Iterator[MonthRow]:
    """Every year-month from the first with usage to the last, oldest first, streamed.

    Within `months`: the SPIKE_WINDOW months before the range are read too, so a month's
    spike verdict is the same whatever range it is shown in.
    """
    if months.first is None:
        return _with_spikes(_fill_gaps(_month_rows(enterprise, months)))
    return _from_first_usage(enterprise, months, months.first)


def _month_rows(enterprise: Enterprise, months: MonthRange) -> Iterator[MonthRow]:
    return (
        MonthRow(month=r["month"], inference=int(r["inference"]), embedding=int(r["embedding"]))
        for r in _monthly_queryset(enterprise, months).iterator()
    )


def _from_first_usage(
    enterprise: Enterprise, months: MonthRange, first: date
) -> Iterator[MonthRow]:
    """The range's rows from its first month with usage (as monthly_row_count counts them),
    their spike verdicts computed with the months before the range."""
    real: set[date] = set()

    def remember(rows: Iterator[MonthRow]) -> Iterator[MonthRow]:
        for row in rows:
            real.add(row.month)
            yield row

    widened = MonthRange(add_months(first, -SPIKE_WINDOW), months.last)
    started = False
    for row in _with_spikes(_fill_gaps(remember(_month_rows(enterprise, widened)))):
        if row.month < first or not (started or row.month in real):
            continue
        started = True
        yield row


def monthly_totals(enterprise: Enterprise, months: MonthRange = EVERYTHING) -> list[MonthRow]:
    """The enterprise's usage per year-month, oldest first (one query)."""
    return list(iter_monthly_totals(enterprise, months))


def monthly_row_count(enterprise: Enterprise, months: MonthRange = EVERYTHING) -> int:
    """How many rows iter_monthly_totals yields, without reading them (one query)."""
    span = EnterpriseMonthlyUsage.objects.filter(months.q(), enterprise=enterprise).aggregate(
        first=Min("month"), last=Max("month")
    )
    if span["first"] is None:
        return 0
    return months_between(span["first"], span["last"])


@dataclass
class YearSummary:
    """A calendar year's subtotal and its months (newest first)."""

    year: int
    months: list[MonthRow] = field(default_factory=list)

    @property
    def inference(self) -> int:
        return sum(m.inference for m in self.months)

    @property
    def embedding(self) -> int:
        return sum(m.embedding for m in self.months)

    @property
    def total(self) -> int:
        return self.inference + self.embedding

    @property
    def active_months(self) -> int:
        return sum(1 for m in self.months if m.total)


def yearly_subtotals(rows: Iterable[MonthRow]) -> list[YearSummary]:
    """Group month rows by calendar year; newest year first, newest month first."""
    years: dict[int, YearSummary] = {}
    for row in rows:
        years.setdefault(row.year, YearSummary(row.year)).months.append(row)
    for summary in years.values():
        summary.months.sort(key=lambda m: m.month, reverse=True)
    return sorted(years.values(), key=lambda y: y.year, reverse=True)


@dataclass(frozen=True)
class Breakdown:
    """Inference vs embedding since the enterprise's first reported token."""

    inference: int
    embedding: int

    @property
    def total(self) -> int:
        return self.inference + self.embedding

    @property
    def inference_share(self) -> Decimal:
        return percent(self.inference, self.total)

    @property
    def embedding_share(self) -> Decimal:
        return percent(self.embedding, self.total)


def usage_breakdown(enterprise: Enterprise, months: MonthRange = EVERYTHING) -> Breakdown:
    sums = EnterpriseMonthlyUsage.objects.filter(months.q(), enterprise=enterprise).aggregate(
        inference=Sum("inference_tokens", default=0), embedding=Sum("embedding_tokens", default=0)
    )
    return Breakdown(inference=int(sums["inference"]), embedding=int(sums["embedding"]))


@dataclass(frozen=True)
class ModelUsage:
    model: str
    inference: int
    embedding: int
    share: Decimal

    @property
    def total(self) -> int:
        return self.inference + self.embedding


def usage_by_model(enterprise: Enterprise, months: MonthRange = EVERYTHING) -> list[ModelUsage]:
    """Tokens per model (lifetime, or within `months`), largest first; events without a
    model are '(unspecified)'."""
    rows = list(
        EnterpriseMonthlyUsage.objects.filter(months.q(), enterprise=enterprise)
        .values("model")
        .annotate(inference=Sum("inference_tokens"), embedding=Sum("embedding_tokens"))
        .annotate(total=F("inference") + F("embedding"))
        .order_by("-total", "model")
    )
    grand = sum(int(r["total"]) for r in rows)
    return [
        ModelUsage(
            model=r["model"] or UNSPECIFIED_MODEL,
            inference=int(r["inference"]),
            embedding=int(r["embedding"]),
            share=percent(int(r["total"]), grand),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class UserUsage:
    user_id: int
    email: str
    inference: int
    embedding: int
    share: Decimal

    @property
    def total(self) -> int:
        return self.inference + self.embedding


def top_users(
    enterprise: Enterprise,
    n: int = 10,
    *,
    grand: int | None = None,
    months: MonthRange = EVERYTHING,
) -> list[UserUsage]:
    """The n users with the most tokens since creation (or within `months`), with their
    share of the enterprise's.

    `grand` is the enterprise total when the caller already has it (the Token Usage page).
    Lifetime reads UsageTotal; a range sums the users' MonthlyUsage rows in it (one grouped
    query over the (enterprise, month, ...) index).
    """
    rows: Any
    if months.is_everything:
        rows = (
            UsageTotal.objects.filter(enterprise=enterprise)
            .annotate(total=F("inference_tokens") + F("embedding_tokens"))
            .filter(total__gt=0)
            .order_by("-total", "user__email")
            .values("user_id", "user__email", "inference_tokens", "embedding_tokens", "total")[:n]
        )
    else:
        rows = (
            MonthlyUsage.objects.filter(months.q(), enterprise=enterprise)
            .values("user_id", "user__email")
            .annotate(
                inference_tokens=Sum("inference_tokens"), embedding_tokens=Sum("embedding_tokens")
            )
            .annotate(total=F("inference_tokens") + F("embedding_tokens"))
            .filter(total__gt=0)
            .order_by("-total", "user__email")[:n]
        )
    if grand is None:
        grand = usage_breakdown(enterprise, months).total
    return [
        UserUsage(
            user_id=r["user_id"],
            email=r["user__email"],
            inference=int(r["inference_tokens"]),
            embedding=int(r["embedding_tokens"]),
            share=percent(int(r["total"]), grand),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class DashboardUsage:
    """This month's inference against the monthly capacity, and the lifetime training pool."""

    month: date
    inference: int
    embedding: int
    previous_inference: int
    capacity: int
    training_purchased: int
    training_used: int
    users_over_allocation: int

    @property
    def remaining(self) -> int:
        return self.capacity - self.inference

    @property
    def over_capacity(self) -> bool:
        return self.inference > self.capacity

    @property
    def overage(self) -> int:
        return max(0, self.inference - self.capacity)

    @property
    def used_percent(self) -> Decimal:
        return percent(self.inference, self.capacity)

    @property
    def bar_percent(self) -> int:
        """Width of the usage bar, 0..100 (an SVG attribute: the CSP forbids style=)."""
        if not self.capacity:
            return 100 if self.inference else 0
        return min(100, self.inference * 100 // self.capacity)

    @property
    def training_percent(self) -> Decimal:
        return percent(self.training_used, self.training_purchased)

    @property
    def training_bar_percent(self) -> int:
        if not self.training_purchased:
            return 100 if self.training_used else 0
        return min(100, self.training_used * 100 // self.training_purchased)


def dashboard_usage(
    enterprise: Enterprise, today: date | None = None, *, pools: PoolTotals | None = None
) -> DashboardUsage:
    """Usage figures of the Dashboard; `today` is in the enterprise's zone. Two queries, and
    the pools' purchases from `pools` (the Dashboard has read them) or pool_totals."""
    month = (today or timezone.localdate(timezone=enterprise.tzinfo)).replace(day=1)
    previous = add_months(month, -1)
    sums = EnterpriseMonthlyUsage.objects.filter(enterprise=enterprise).aggregate(
        inference=Sum("inference_tokens", filter=Q(month=month), default=0),
        embedding=Sum("embedding_tokens", filter=Q(month=month), default=0),
        previous=Sum("inference_tokens", filter=Q(month=previous), default=0),
        training_used=Sum("embedding_tokens", default=0),
    )
    pools = pools or pool_totals(enterprise)
    over = MonthlyUsage.objects.filter(
        enterprise=enterprise,
        month=month,
        user__enterprise=enterprise,
        inference_tokens__gt=F("user__max_inference_tokens"),
    ).count()
    return DashboardUsage(
        month=month,
        inference=int(sums["inference"]),
        embedding=int(sums["embedding"]),
        previous_inference=int(sums["previous"]),
        capacity=pools.inference.purchased,
        training_purchased=pools.training.purchased,
        training_used=int(sums["training_used"]),
        users_over_allocation=over,
    )
