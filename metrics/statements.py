"""Frozen monthly statements: `close_month` writes one per enterprise and ended month.

A month can be closed once it has ended in the enterprise's time zone. The statement is
built from the roll-ups (never the ledger) in one snapshot and stored with the SHA-256 of
its canonical JSON (sorted keys, no spaces, UTF-8), so it can be re-verified at any time.

Statements are append-only. Usage reported after a month was closed still lands in that
month's roll-ups (quota and the statistics pages stay truthful); the next statement to be
closed books the difference between the roll-ups and what earlier statements already
accounted for as dated adjustment lines. Closing is idempotent: a month with a statement
is skipped, so running the command late or twice is safe.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Min, Sum
from django.utils import timezone

from accounts.models import Enterprise, User
from metrics.models import EnterpriseMonthlyUsage, MonthlyStatement, MonthlyUsage
from metrics.quota import add_months, next_month, usage_month
from tokens.models import TokenPurchase

FORMAT = 1


def canonical_json(content: dict[str, Any]) -> bytes:
    """The bytes the hash is taken over: the same content always gives the same bytes."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(content)).hexdigest()


def verify(statement: MonthlyStatement) -> bool:
    """Does the stored content still hash to the stored digest?"""
    return content_hash(statement.content) == statement.sha256


def last_closable_month(enterprise: Enterprise, now: dt.datetime) -> dt.date:
    """The latest month that has ended in the enterprise's time zone."""
    return add_months(usage_month(now, enterprise.tzinfo), -1)


def _first_month(enterprise: Enterprise) -> dt.date:
    first_usage = EnterpriseMonthlyUsage.objects.filter(enterprise=enterprise).aggregate(
        first=Min("month")
    )["first"]
    created = usage_month(enterprise.created_at, enterprise.tzinfo)
    return min(first_usage, created) if first_usage else created


def close_due_months(
    *, now: dt.datetime | None = None, enterprises: Iterable[Enterprise] | None = None
) -> list[MonthlyStatement]:
    """Close every ended month without a statement, oldest first; returns the new ones."""
    now = now or timezone.now()
    closed = []
    for enterprise in enterprises if enterprises is not None else Enterprise.objects.all():
        last = last_closable_month(enterprise, now)
        done = set(
            MonthlyStatement.objects.filter(enterprise=enterprise).values_list("month", flat=True)
        )
        month = _first_month(enterprise)
        while month <= last:
            if month not in done:
                statement = close_month(enterprise, month, now=now)
                if statement is not None:
                    closed.append(statement)
            month = next_month(month)
    return closed


def close_month(
    enterprise: Enterprise, month: dt.date, *, now: dt.datetime | None = None
) -> MonthlyStatement | None:
    """Freeze `month` for `enterprise`; None when it already has a statement.

    Refuses a month that has not ended yet in the enterprise's time zone.
    """
    now = now or timezone.now()
    month = month.replace(day=1)
    if month > last_closable_month(enterprise, now):
        raise ValueError(f"{month:%Y-%m} has not ended yet in {enterprise.time_zone}.")
    try:
        with transaction.atomic():
            _snapshot()
            # Two runs at once queue here; the second then finds the statement and stops.
            Enterprise.objects.select_for_update().filter(pk=enterprise.pk).exists()
            if MonthlyStatement.objects.filter(enterprise=enterprise, month=month).exists():
                return None
            content = build_content(enterprise, month, now)
            return MonthlyStatement.objects.create(
                enterprise=enterprise,
                month=month,
                closed_at=now,
                content=content,
                sha256=content_hash(content),
                inference_tokens=content["totals"]["inference"],
                embedding_tokens=content["totals"]["embedding"],
                adjustment_lines=len(content["adjustments"]),
            )
    except IntegrityError:  # a concurrent run closed it between our check and insert
        return None


def _snapshot() -> None:
    """On PostgreSQL, outside any caller's transaction: every query of the statement reads
    one snapshot, so ingestion committing meanwhile cannot split it (users vs models)."""
    if connection.vendor == "postgresql" and len(connection.atomic_blocks) == 1:
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def _local_midnight(day: dt.date, enterprise: Enterprise) -> str:
    return dt.datetime.combine(day, dt.time(), tzinfo=enterprise.tzinfo).isoformat()


def build_content(enterprise: Enterprise, month: dt.date, now: dt.datetime) -> dict[str, Any]:
    """The statement of `month` as plain JSON data (ints and strings only)."""
    end = next_month(month)
    emails = dict(User.objects.filter(enterprise=enterprise).values_list("pk", "email"))
    usage = list(
        MonthlyUsage.objects.filter(enterprise=enterprise, month=month)
        .order_by("user_id")
        .values_list("user_id", "inference_tokens", "embedding_tokens")
    )
    missing = {u for u, *_ in usage} - emails.keys()
    if missing:  # users who have left the enterprise since
        emails.update(User.objects.filter(pk__in=missing).values_list("pk", "email"))
    models = EnterpriseMonthlyUsage.objects.filter(enterprise=enterprise, month=month).order_by(
        "model"
    )
    allocations = (
        User.objects.filter(enterprise=enterprise)
        .order_by("pk")
        .values_list("pk", "email", "max_inference_tokens", "max_embedding_tokens")
    )
    purchases = TokenPurchase.objects.filter(enterprise=enterprise)
    in_month = purchases.filter(purchased_on__gte=month, purchased_on__lt=end).order_by(
        "purchased_on", "pk"
    )
    pool = purchases.filter(purchased_on__lt=end).aggregate(
        inference=Sum("inference_tokens", default=0), training=Sum("training_tokens", default=0)
    )
    today = now.astimezone(enterprise.tzinfo).date()
    adjustments = _adjustments(enterprise, month, today, emails)
    return {
        "format": FORMAT,
        "enterprise": {
            "id": enterprise.pk,
            "name": enterprise.name,
            "slug": enterprise.slug,
            "time_zone": enterprise.time_zone,
        },
        "month": f"{month:%Y-%m}",
        "period": {
            "from": _local_midnight(month, enterprise),
            "until": _local_midnight(end, enterprise),
        },
        "closed_at": now.astimezone(dt.UTC).isoformat(),
        "users": [
            {"user_id": u, "email": emails.get(u, ""), "inference": i, "embedding": e}
            for u, i, e in usage
        ],
        "models": [
            {"model": m.model, "inference": m.inference_tokens, "embedding": m.embedding_tokens}
            for m in models
        ],
        "totals": {
            "inference": sum(i for _u, i, _e in usage),
            "embedding": sum(e for _u, _i, e in usage),
        },
        "allocations": [
            {"user_id": u, "email": email, "max_inference_tokens": i, "max_embedding_tokens": e}
            for u, email, i, e in allocations
        ],
        "pool": {
            "inference_purchased": int(pool["inference"]),
            "training_purchased": int(pool["training"]),
        },
        "purchases": [
            {
                "id": p.pk,
                "purchased_on": p.purchased_on.isoformat(),
                "reference": p.reference,
                "note": p.note,
                "inference_tokens": p.inference_tokens,
                "training_tokens": p.training_tokens,
            }
            for p in in_month
        ],
        "adjustments": adjustments,
        "adjustment_totals": {
            "inference": sum(a["inference"] for a in adjustments),
            "embedding": sum(a["embedding"] for a in adjustments),
        },
    }


def _adjustments(
    enterprise: Enterprise, month: dt.date, today: dt.date, emails: dict[int, str]
) -> list[dict[str, Any]]:
    """Late usage of months closed before `month`: roll-ups now minus what statements booked.

    Booked = the month's own statement plus adjustment lines for it on later statements.
    """
    earlier = list(
        MonthlyStatement.objects.filter(enterprise=enterprise, month__lt=month)
        .order_by("month")
        .values_list("month", "content")
    )
    if not earlier:
        return []
    booked: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for _month, content in earlier:
        for row in content["users"]:
            slot = booked[(content["month"], row["user_id"])]
            slot[0] += row["inference"]
            slot[1] += row["embedding"]
        for row in content["adjustments"]:
            slot = booked[(row["month"], row["user_id"])]
            slot[0] += row["inference"]
            slot[1] += row["embedding"]
    closed_months = [m for m, _c in earlier]
    now_rows = {
        (f"{m:%Y-%m}", u): (i, e)
        for u, m, i, e in MonthlyUsage.objects.filter(
            enterprise=enterprise, month__in=closed_months
        ).values_list("user_id", "month", "inference_tokens", "embedding_tokens")
    }
    missing = {u for _m, u in now_rows.keys() | booked.keys()} - emails.keys()
    if missing:
        emails.update(User.objects.filter(pk__in=missing).values_list("pk", "email"))
    lines = []
    for key in sorted(now_rows.keys() | booked.keys()):
        inference, embedding = now_rows.get(key, (0, 0))
        was = booked.get(key, [0, 0])
        if (inference - was[0], embedding - was[1]) != (0, 0):
            lines.append(
                {
                    "month": key[0],
                    "user_id": key[1],
                    "email": emails.get(key[1], ""),
                    "inference": inference - was[0],
                    "embedding": embedding - was[1],
                    "recorded_on": today.isoformat(),
                }
            )
    return lines


@dataclass(frozen=True)
class Adjusted:
    """A closed month whose roll-ups moved after its statement was frozen."""

    month: dt.date
    frozen: int
    now: int


def adjusted_after_close(
    enterprise: Enterprise, current: dict[dt.date, int]
) -> dict[dt.date, Adjusted]:
    """Closed months whose total now differs from their statement (one query).

    `current` maps month to its total tokens now (the page's own roll-up rows).
    """
    out = {}
    for month, inference, embedding in MonthlyStatement.objects.filter(
        enterprise=enterprise
    ).values_list("month", "inference_tokens", "embedding_tokens"):
        frozen = inference + embedding
        if current.get(month, 0) != frozen:
            out[month] = Adjusted(month, frozen, current.get(month, 0))
    return out
