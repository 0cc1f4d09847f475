"""Users with their usage columns: the Users table, the user page and the user exports.

Usage figures come from the roll-ups (UsageTotal, MonthlyUsage), never from the event
ledger, and are attached as annotations so the table sorts them in the database and one
query serves a whole page.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable

from django.core.cache import cache
from django.db.models import (
    DateField,
    Exists,
    F,
    FilteredRelation,
    IntegerField,
    OrderBy,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from accounts.models import Enterprise, User
from metrics import forecast
from metrics.models import MonthlyUsage, UsageTotal
from metrics.quota import add_months, usage_month
from tokens.models import TemporaryAllocation


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
    # A fresh clone each call: the caller filters and orders its own copy.
    return _users_with_usage(enterprise.pk, this_month, previous, today).all()


@functools.lru_cache(maxsize=128)
def _users_with_usage(
    enterprise_id: int, this_month: dt.date, previous: dt.date, today: dt.date
) -> QuerySet[User]:
    """Built once per enterprise and day in each process, never evaluated: resolving these
    joins and expressions is ORM work of ~2.5 ms, a tenth of a Users page. Nothing in it
    depends on the time of day: a temporary allocation counts until the database's clock
    (the statement's time) reaches its end."""
    return (
        User.objects.filter(enterprise_id=enterprise_id)
        .annotate(
            # LEFT JOINs on the roll-ups, not a correlated subquery per user: sorted by a
            # usage column, PostgreSQL hash-joins the enterprise's roll-ups of that month
            # (one index range) instead of probing the roll-ups once per user.
            # The enterprise in the join condition lets the roll-ups be read through their
            # (enterprise, month, ...) index rather than a scan of every enterprise's month.
            this_month_usage=FilteredRelation(
                "monthly_usage",
                condition=Q(
                    monthly_usage__enterprise_id=enterprise_id, monthly_usage__month=this_month
                ),
            ),
            prev_month_usage=FilteredRelation(
                "monthly_usage",
                condition=Q(
                    monthly_usage__enterprise_id=enterprise_id, monthly_usage__month=previous
                ),
            ),
            # A user never leaves their enterprise, so this condition changes no figure; it
            # lets the usage sort read the roll-up's (enterprise, total) index.
            lifetime_usage=FilteredRelation(
                "usage_total", condition=Q(usage_total__enterprise_id=enterprise_id)
            ),
            # NULL without a roll-up row; the same expression as usage_total_sort_idx.
            total_raw=F("lifetime_usage__inference_tokens") + F("lifetime_usage__embedding_tokens"),
            # A user with no usage yet has no roll-up row: 0, not NULL, so sorts are total.
            total_usage=Coalesce(F("total_raw"), Value(0), output_field=IntegerField()),
            # The roll-up columns themselves too (NULL without a row): usage_split filters
            # and sorts on them, in the joins above, so that their indexes serve the sort.
            month_raw=F("this_month_usage__inference_tokens"),
            prev_month_raw=F("prev_month_usage__inference_tokens"),
            month_inference=Coalesce(F("month_raw"), Value(0), output_field=IntegerField()),
            prev_month_inference=Coalesce(
                F("prev_month_raw"), Value(0), output_field=IntegerField()
            ),
            # At most one open temporary allocation a user (a constraint). Sub-selects, not
            # a join: they run for the rows shown only, and a query that reads ids or counts
            # (a page by number, a row count) leaves them out; as a LEFT JOIN PostgreSQL
            # could not drop, it was probed for all 10,000 users (6 ms of the Users page 200).
            temp_extra=Coalesce(
                Subquery(_running_extra(enterprise_id).values("extra_inference")[:1]),
                Value(0),
                output_field=IntegerField(),
            ),
            temp_until=Subquery(_running_extra(enterprise_id).values("until")[:1]),
        )
        .annotate(
            runs_out_days=forecast.user_runs_out_days(today),
            runs_out_from=Value(today, output_field=DateField()),
        )
        .order_by("email")
    )


def _running_extra(enterprise_id: int) -> QuerySet[TemporaryAllocation]:
    """The user's temporary allocation counting now (at the database's clock), if any."""
    return TemporaryAllocation.objects.active(Now()).filter(
        user=OuterRef("pk"), enterprise_id=enterprise_id
    )


# Usage sort key -> the roll-up value it reads, NULL for a user without a roll-up row.
_RAW = {
    "total_usage": "total_raw",
    "month_inference": "month_raw",
    "prev_month_inference": "prev_month_raw",
}

UsageSplit = Callable[[QuerySet[User], str], "tuple[QuerySet[User], QuerySet[User], str] | None"]


def usage_split(enterprise: Enterprise, now: dt.datetime | None = None) -> UsageSplit:
    """A usage sort as two index reads: (users at zero by email, users above zero by usage, email).

    The answer, for users_with_usage(enterprise, now) filtered and a sort key, is two
    ascending querysets that, one after the other, are those users sorted by (key, email), and
    the name of the roll-up value the second is sorted on (for seeks); None
    for a key that is not a usage column. Users above zero are read in order from the roll-up's
    (enterprise, month, tokens, user) or (enterprise, total, user) index, so a page sorted by
    usage reads a page of index entries instead of joining and sorting the whole enterprise.
    Users at zero (most without any roll-up row) are read from the users' (enterprise, email)
    index, each checked against the roll-up's unique (user, month) index (an anti-join).
    """
    this_month, previous = usage_months(enterprise, now)

    def above_zero(key: str) -> QuerySet:
        # Built only for the sort asked for: most pages are not sorted by usage.
        if key == "total_usage":
            return UsageTotal.objects.annotate(
                total=F("inference_tokens") + F("embedding_tokens")
            ).filter(enterprise=enterprise, total__gt=0)
        month = this_month if key == "month_inference" else previous
        return MonthlyUsage.objects.filter(
            enterprise=enterprise, month=month, inference_tokens__gt=0
        )

    def split(users: QuerySet[User], key: str) -> tuple[QuerySet[User], QuerySet[User], str] | None:
        if key not in _RAW:
            return None
        # NOT EXISTS, not COALESCE(...) = 0: the planner knows an anti-join's row count.
        used = above_zero(key).filter(user=OuterRef("pk"))
        zero = users.filter(~Exists(used)).order_by("email")
        raw = _RAW[key]
        above = users.filter(**{f"{raw}__gt": 0}).order_by(F(raw).asc(), "email")
        return zero, above, raw

    return split


# How long a Users page sorted by Runs out reuses the order it computed (seconds).
RUNS_OUT_ORDER_SECONDS = 60


def runs_out_order(
    enterprise: Enterprise, now: dt.datetime, version: object
) -> Callable[[QuerySet[User], int], list[int] | None]:
    """For the Users table sorted by Runs out: the users' ids in that order, kept a minute.

    No index can serve that sort (each user's forecast is computed from 14 days of their day
    roll-ups), so it is computed for the whole filtered enterprise (~70 ms at 10,000 users)
    and kept in the cache for RUNS_OUT_ORDER_SECONDS. The key is the enterprise, its day,
    the direction, the row count and `version` (the view passes the filters and the
    enterprise's allocated totals): adding or removing users, filtering or changing an
    allocation sorts again at once; only new usage waits for the minute (the forecast reads
    the days before today). Each page's 25 rows, and their Runs out cells, are read fresh.
    """
    today = now.astimezone(enterprise.tzinfo).date()

    def ids_in_order(users: QuerySet[User], count: int) -> list[int] | None:
        order = users.query.order_by
        first = order[0] if order else None
        sorted_by = getattr(first, "expression", None) if isinstance(first, OrderBy) else None
        if getattr(sorted_by, "name", "") != "runs_out_days":
            return None
        text = f"{enterprise.pk}|{today}|{first.descending}|{count}|{version}"  # type: ignore[union-attr]
        key = "users-runs-out:" + hashlib.sha256(text.encode()).hexdigest()
        found = cache.get(key)
        if found is None:
            found = list(users.values_list("pk", flat=True))
            cache.set(key, found, RUNS_OUT_ORDER_SECONDS)
        return found

    return ids_in_order
