"""Users with their usage columns: the Users table, the user page and the user exports.

Usage figures come from the roll-ups (UsageTotal, MonthlyUsage), never from the event
ledger, and are attached as annotations so the table sorts them in the database and one
query serves a whole page.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import F, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Enterprise, User
from metrics.models import MonthlyUsage
from metrics.quota import add_months, usage_month


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
