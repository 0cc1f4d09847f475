"""Users with their usage columns: the Users table, the user page and the user exports.

Usage figures come from the roll-ups (UsageTotal, MonthlyUsage), never from the event
ledger, and are attached as annotations so the table sorts them in the database and one
query serves a whole page.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import DateField, F, FilteredRelation, IntegerField, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Enterprise, User
from metrics import forecast
from metrics.quota import add_months, usage_month
from tokens.models import active_allocation


def usage_months(enterprise: Enterprise, now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """(this month, previous month) as roll-up keys: first days in the enterprise's time zone."""
    this_month = usage_month(now or timezone.now(), enterprise.tzinfo)
    return this_month, add_months(this_month, -1)


def users_with_usage(enterprise: Enterprise, now: dt.datetime | None = None) -> QuerySet[User]:
    """The enterprise's users with total_usage, month_inference and prev_month_inference,
    and the temporary allocation counting now (temp_extra, 0 if none, and temp_until), and
    the burn-rate forecast of this month's inference (runs_out_days from runs_out_from, see
    metrics.forecast)."""
    now = now or timezone.now()
    this_month, previous = usage_months(enterprise, now)
    today = now.astimezone(enterprise.tzinfo).date()
    return (
        User.objects.in_enterprise(enterprise)
        .annotate(
            # LEFT JOINs on the roll-ups, not a correlated subquery per user: sorted by a
            # usage column, PostgreSQL hash-joins the enterprise's roll-ups of that month
            # (one index range) instead of probing the roll-ups once per user.
            # The enterprise in the join condition lets the roll-ups be read through their
            # (enterprise, month, ...) index rather than a scan of every enterprise's month.
            this_month_usage=FilteredRelation(
                "monthly_usage",
                condition=Q(monthly_usage__enterprise=enterprise, monthly_usage__month=this_month),
            ),
            prev_month_usage=FilteredRelation(
                "monthly_usage",
                condition=Q(monthly_usage__enterprise=enterprise, monthly_usage__month=previous),
            ),
            # A user with no usage yet has no roll-up row: 0, not NULL, so sorts are total.
            total_usage=Coalesce(
                F("usage_total__inference_tokens") + F("usage_total__embedding_tokens"),
                Value(0),
                output_field=IntegerField(),
            ),
            month_inference=Coalesce(
                F("this_month_usage__inference_tokens"), Value(0), output_field=IntegerField()
            ),
            prev_month_inference=Coalesce(
                F("prev_month_usage__inference_tokens"), Value(0), output_field=IntegerField()
            ),
            # At most one open temporary allocation a user (a constraint): one LEFT JOIN.
            temporary=FilteredRelation(
                "temporary_allocations",
                condition=Q(temporary_allocations__enterprise=enterprise)
                & active_allocation(now, prefix="temporary_allocations__"),
            ),
            temp_extra=Coalesce(
                F("temporary__extra_inference"), Value(0), output_field=IntegerField()
            ),
            temp_until=F("temporary__until"),
        )
        .annotate(
            runs_out_days=forecast.user_runs_out_days(today),
            runs_out_from=Value(today, output_field=DateField()),
        )
        .order_by("email")
    )
