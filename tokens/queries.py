"""Reads for token management: pool totals and the user table's usage columns.

Usage figures come from the roll-ups (metrics.models.UsageTotal, MonthlyUsage), never from
the event ledger, and are attached as annotations so the table sorts them in the database
and one query serves a whole page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import F, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Enterprise, User
from metrics.models import MonthlyUsage
from metrics.quota import add_months, usage_month
from tokens.models import TokenPurchase


@dataclass(frozen=True)
class Pool:
    """One pool (inference or training) of one enterprise."""

    purchased: int
    assigned: int

    @property
    def unassigned(self) -> int:
        return self.purchased - self.assigned


@dataclass(frozen=True)
class PoolTotals:
    inference: Pool
    training: Pool

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            name: {"purchased": p.purchased, "assigned": p.assigned, "unassigned": p.unassigned}
            for name, p in (("inference", self.inference), ("training", self.training))
        }


def assigned_totals(enterprise: Enterprise) -> dict[str, int]:
    """Sums of the users' allocations (Banned users' allocations still count)."""
    sums = User.objects.in_enterprise(enterprise).aggregate(
        inference=Sum("max_inference_tokens", default=0),
        training=Sum("max_embedding_tokens", default=0),
    )
    return {"inference": int(sums["inference"]), "training": int(sums["training"])}


def pool_totals(enterprise: Enterprise) -> PoolTotals:
    """Purchased, assigned and unassigned for both pools, in two queries."""
    purchased = TokenPurchase.objects.filter(enterprise=enterprise).totals()
    assigned = assigned_totals(enterprise)
    return PoolTotals(
        inference=Pool(purchased["inference"], assigned["inference"]),
        training=Pool(purchased["training"], assigned["training"]),
    )


def usage_months(enterprise: Enterprise, now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """(this month, previous month) as roll-up keys: first days in the enterprise's time zone."""
    this_month = usage_month(now or timezone.now(), enterprise.tzinfo)
    return this_month, add_months(this_month, -1)


def _month_inference(month: dt.date) -> Coalesce:
    tokens = MonthlyUsage.objects.filter(user=OuterRef("pk"), month=month).values(
        "inference_tokens"
    )[:1]
    return Coalesce(Subquery(tokens, output_field=IntegerField()), Value(0))


def users_with_usage(enterprise: Enterprise, now: dt.datetime | None = None) -> QuerySet[User]:
    """The enterprise's users with total_usage, month_inference and prev_month_inference."""
    this_month, previous = usage_months(enterprise, now)
    return (
        User.objects.in_enterprise(enterprise)
        .annotate(
            # LEFT JOIN on the one-to-one roll-up; a user with no usage yet has no row.
            total_usage=Coalesce(
                F("usage_total__inference_tokens") + F("usage_total__embedding_tokens"),
                Value(0),
                output_field=IntegerField(),
            ),
            month_inference=_month_inference(this_month),
            prev_month_inference=_month_inference(previous),
        )
        .order_by("email")
    )
