"""`manage.py reconcile_usage`: prove every roll-up equals the usage ledger.

Recomputes MonthlyUsage, UsageTotal, EnterpriseMonthlyUsage and DailyUsage from UsageEvent
with GROUP BY queries, compares row by row, prints each drift and exits non-zero when there
is any. Every run is recorded as a ReconcileRun (the Dashboard shows the last one that passed).

It covers the ledger's attached months. A month detached for archiving
(detach_usage_partition, DetachedUsageMonth) was checked when it was detached: its monthly
and daily roll-ups are left out of the comparison and stand for its rows in the lifetime
totals.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Enterprise
from metrics.models import (
    DailyUsage,
    DetachedUsageMonth,
    EnterpriseMonthlyUsage,
    MonthlyUsage,
    ReconcileRun,
    UsageEvent,
    UsageKind,
    UsageTotal,
)
from metrics.quota import next_month

CHUNK = 5000
# A run with thousands of drifted rows would bloat its ReconcileRun; the printout has them all.
MAX_STORED_DRIFTS = 200

INFERENCE = Sum("tokens", filter=Q(kind=UsageKind.INFERENCE), default=0)
EMBEDDING = Sum("tokens", filter=Q(kind=UsageKind.EMBEDDING), default=0)


@dataclass(frozen=True)
class Drift:
    table: str
    key: dict[str, Any]
    ledger: tuple[int, ...]
    rollup: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "key": self.key,
            "ledger": {"inference": self.ledger[0], "embedding": self.ledger[1]},
            "rollup": {"inference": self.rollup[0], "embedding": self.rollup[1]},
        }

    def __str__(self) -> str:
        key = " ".join(f"{name}={value}" for name, value in self.key.items())
        return (
            f"{self.table} {key}: ledger inference={self.ledger[0]} embedding={self.ledger[1]},"
            f" roll-up inference={self.rollup[0]} embedding={self.rollup[1]}"
        )


def merge_compare(
    table: str, names: tuple[str, ...], ledger: Iterable[tuple], rollup: Iterable[tuple]
) -> Iterator[Drift]:
    """Walk two streams sorted by the same integer/date key; yield every key that differs.

    A key missing on one side counts as zero tokens there. Memory stays constant however
    many users and months there are.
    """
    width = len(names)
    end: Any = object()  # sentinel: Any, so the rows it stands in for stay indexable
    left, right = iter(ledger), iter(rollup)
    a, b = next(left, end), next(right, end)
    while a is not end or b is not end:
        if b is end or (a is not end and a[:width] < b[:width]):
            key, ledger_values, rollup_values = a[:width], a[width:], (0, 0)
            a = next(left, end)
        elif a is end or b[:width] < a[:width]:
            key, ledger_values, rollup_values = b[:width], (0, 0), b[width:]
            b = next(right, end)
        else:
            key, ledger_values, rollup_values = a[:width], a[width:], b[width:]
            a, b = next(left, end), next(right, end)
        if tuple(ledger_values) != tuple(rollup_values):
            yield Drift(table, _key(names, key), tuple(ledger_values), tuple(rollup_values))


def _key(names: tuple[str, ...], values: tuple) -> dict[str, Any]:
    return {
        name: (v.isoformat() if hasattr(v, "isoformat") else v)
        for name, v in zip(names, values, strict=True)
    }


def detached_months() -> list:
    return list(DetachedUsageMonth.objects.values_list("month", flat=True))


def attached_ledger() -> QuerySet[UsageEvent]:
    """The ledger without detached months (late events of one sit in DEFAULT: its roll-ups
    count them, and the roll-ups are what stands for that month)."""
    return UsageEvent.objects.exclude(month__in=detached_months())


def add_sorted(left: Iterable[tuple], right: Iterable[tuple]) -> Iterator[tuple]:
    """Merge two streams of (key, a, b) sorted by key, adding a and b where keys meet."""
    end: Any = object()
    a_it, b_it = iter(left), iter(right)
    a, b = next(a_it, end), next(b_it, end)
    while a is not end or b is not end:
        if b is end or (a is not end and a[0] < b[0]):
            yield tuple(a)
            a = next(a_it, end)
        elif a is end or b[0] < a[0]:
            yield tuple(b)
            b = next(b_it, end)
        else:
            yield (a[0], a[1] + b[1], a[2] + b[2])
            a, b = next(a_it, end), next(b_it, end)


def monthly_drift() -> Iterator[Drift]:
    ledger = (
        attached_ledger()
        .values("user_id", "month")
        .annotate(inference=INFERENCE, embedding=EMBEDDING)
        .order_by("user_id", "month")
        .values_list("user_id", "month", "inference", "embedding")
    )
    rollup = (
        MonthlyUsage.objects.exclude(month__in=detached_months())
        .order_by("user_id", "month")
        .values_list("user_id", "month", "inference_tokens", "embedding_tokens")
    )
    yield from merge_compare(
        "monthly_usage",
        ("user", "month"),
        ledger.iterator(chunk_size=CHUNK),
        rollup.iterator(chunk_size=CHUNK),
    )


def lifetime_drift() -> Iterator[Drift]:
    ledger = (
        attached_ledger()
        .values("user_id")
        .annotate(inference=INFERENCE, embedding=EMBEDDING)
        .order_by("user_id")
        .values_list("user_id", "inference", "embedding")
    )
    rollup = UsageTotal.objects.order_by("user_id").values_list(
        "user_id", "inference_tokens", "embedding_tokens"
    )
    ledger_rows: Iterable[tuple] = ledger.iterator(chunk_size=CHUNK)
    if months := detached_months():
        archived = (
            MonthlyUsage.objects.filter(month__in=months)
            .values("user_id")
            .annotate(inference=Sum("inference_tokens"), embedding=Sum("embedding_tokens"))
            .order_by("user_id")
            .values_list("user_id", "inference", "embedding")
        )
        ledger_rows = add_sorted(ledger_rows, archived.iterator(chunk_size=CHUNK))
    yield from merge_compare(
        "usage_total", ("user",), ledger_rows, rollup.iterator(chunk_size=CHUNK)
    )


def enterprise_drift() -> Iterator[Drift]:
    """Per enterprise, month and model. Compared in memory: the table grows with
    enterprises x months x models, not with users, and model names sort differently in
    the database's collation than in Python, which a merge walk would need."""
    ledger = {
        (e, m, model): (i, emb)
        for e, m, model, i, emb in attached_ledger()
        .values("enterprise_id", "month", "model")
        .annotate(inference=INFERENCE, embedding=EMBEDDING)
        .order_by()
        .values_list("enterprise_id", "month", "model", "inference", "embedding")
    }
    rollup = {
        (e, m, model): (i, emb)
        for e, m, model, i, emb in EnterpriseMonthlyUsage.objects.exclude(
            month__in=detached_months()
        ).values_list("enterprise_id", "month", "model", "inference_tokens", "embedding_tokens")
    }
    names = ("enterprise", "month", "model")
    for key in sorted(ledger.keys() | rollup.keys(), key=lambda k: (k[0], k[1], k[2])):
        left, right = ledger.get(key, (0, 0)), rollup.get(key, (0, 0))
        if left != right:
            yield Drift("enterprise_monthly_usage", _key(names, key), left, right)


def daily_drift() -> Iterator[Drift]:
    """Per user and day of the enterprise's time zone. The day is computed per enterprise
    (each has its own zone), one enterprise at a time, so the walk stays sorted. Days of a
    detached month are left out on both sides, like its monthly roll-ups."""
    archived = Q()
    for month in detached_months():
        archived |= Q(day__gte=month, day__lt=next_month(month))
    for enterprise_id, zone in (
        Enterprise.objects.order_by("pk").values_list("pk", "time_zone").iterator()
    ):
        local = TruncDate("occurred_at", tzinfo=zoneinfo.ZoneInfo(zone))
        ledger = (
            attached_ledger()
            .filter(enterprise_id=enterprise_id)
            .annotate(day=local)
            .values("user_id", "day")
            .annotate(inference=INFERENCE, embedding=EMBEDDING)
            .order_by("user_id", "day")
            .values_list("user_id", "day", "inference", "embedding")
        )
        rollup = (
            DailyUsage.objects.filter(enterprise_id=enterprise_id)
            .exclude(archived)
            .order_by("user_id", "day")
            .values_list("user_id", "day", "inference_tokens", "embedding_tokens")
        )
        yield from merge_compare(
            "daily_usage",
            ("user", "day"),
            ledger.iterator(chunk_size=CHUNK),
            rollup.iterator(chunk_size=CHUNK),
        )


class Command(BaseCommand):
    help = "Recompute every usage roll-up from the ledger; exit 1 and list the drift if any."

    def handle(self, *args: Any, **options: Any) -> None:
        started = timezone.now()
        drift_count = 0
        stored: list[dict[str, Any]] = []
        outermost = not connection.in_atomic_block
        with transaction.atomic():
            if outermost and connection.vendor == "postgresql":
                # One snapshot for all the queries, so ingestion running meanwhile cannot
                # show up as drift between the ledger query and the roll-up query.
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            counts = {
                "events": UsageEvent.objects.count(),
                "monthly rows": MonthlyUsage.objects.count(),
                "user totals": UsageTotal.objects.count(),
                "enterprise-month-model rows": EnterpriseMonthlyUsage.objects.count(),
                "daily rows": DailyUsage.objects.count(),
            }
            for check in (monthly_drift, lifetime_drift, enterprise_drift, daily_drift):
                for drift in check():
                    drift_count += 1
                    if len(stored) < MAX_STORED_DRIFTS:
                        stored.append(drift.as_dict())
                    self.stdout.write(f"DRIFT {drift}")
        ReconcileRun.objects.create(
            started_at=started,
            finished_at=timezone.now(),
            ok=drift_count == 0,
            drift_count=drift_count,
            details=stored,
        )
        summary = ", ".join(f"{value} {name}" for name, value in counts.items())
        if archived := len(detached_months()):
            summary += f"; {archived} detached month(s) left to their roll-ups"
        if drift_count:
            raise CommandError(f"{drift_count} roll-up row(s) differ from the ledger ({summary}).")
        self.stdout.write(self.style.SUCCESS(f"Roll-ups match the ledger: {summary}."))
