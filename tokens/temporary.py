"""Temporary allocations: "+N inference tokens until DATE", on top of a user's allocation.

The user's Max Inference Tokens is never touched. The extra counts (quota, ingest overage,
the pool) while TemporaryAllocation.objects.active() says so, which ends at local midnight
after `until` in the enterprise's time zone whether or not `expire_allocations` has run;
the command only marks the row ended and logs it. Because the base allocation is what the
Paid minimum applies to (and the extra never counts towards it), the end of an extra can
never leave a Paid user under 200,000.

Writes take the enterprise lock first, like every pool write (tokens.pool).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from accounts.models import Enterprise, User
from asksage_admin.core.audit import Action, log_activity
from asksage_admin.core.errors import Refused
from asksage_admin.core.fields import MAX_TOKENS
from asksage_admin.core.formats import day
from asksage_admin.core.formats import tokens as fmt
from asksage_admin.core.retry import retrying
from tokens.models import TemporaryAllocation, UsageRequest
from tokens.pool import MIN_PAID_INFERENCE, purchased_totals
from tokens.queries import assigned_totals

# Long enough for a quarter-end push; anything longer is a permanent allocation.
MAX_DAYS_AHEAD = 366
SCHEDULER = "expire_allocations"


def ends_at(until: dt.date, enterprise: Enterprise) -> dt.datetime:
    """The instant `until` ends in the enterprise's time zone: the next local midnight."""
    return dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, enterprise.tzinfo)


def local_today(enterprise: Enterprise, now: dt.datetime | None = None) -> dt.date:
    return (now or timezone.now()).astimezone(enterprise.tzinfo).date()


def refuse_short(enterprise: Enterprise, pool: str, needed: int, who: str) -> None:
    """Refuse when the pool (inference | training) cannot cover `needed` more tokens."""
    free = purchased_totals(enterprise)[pool] - assigned_totals(enterprise)[pool]
    if free < needed:
        raise Refused(
            f"{who} needs {fmt(needed)} more {pool} tokens but only {fmt(max(free, 0))} are "
            f"unassigned (the pool would be {fmt(needed - free)} short). Lower someone's "
            f"allocation or give less. Contact us at {settings.SALES_EMAIL} for more tokens.",
            code="over_pool",
        )


def check_until(enterprise: Enterprise, until: dt.date, now: dt.datetime | None = None) -> None:
    today = local_today(enterprise, now)
    if until < today:
        raise Refused(
            f"The end date {day(until)} has passed (today is {day(today)} in "
            f"{enterprise.time_zone}).",
            rows={"until": "In the past."},
        )
    if until > today + dt.timedelta(days=MAX_DAYS_AHEAD):
        raise Refused(
            f"Choose an end date within {MAX_DAYS_AHEAD} days; for longer, change the "
            "allocation itself.",
            rows={"until": "Too far ahead."},
        )


def _end(row: TemporaryAllocation, actor: User | None, why: str, now: dt.datetime) -> None:
    row.reverted_at = now
    row.save(update_fields=["reverted_at"])
    log_activity(
        actor=actor,
        actor_email=SCHEDULER if actor is None else "",
        action=Action.TEMPORARY_ALLOCATION_ENDED,
        enterprise=row.enterprise,
        target=row.user.email,
        old={"extra_inference": row.extra_inference, "until": row.until.isoformat()},
        new={"extra_inference": 0, "why": why},
    )


@retrying
def grant(
    *,
    actor: User,
    enterprise: Enterprise,
    user_id: int,
    extra: int,
    until: dt.date,
    usage_request: UsageRequest | None = None,
    now: dt.datetime | None = None,
) -> TemporaryAllocation:
    """Give a user `extra` inference tokens until the end of `until` (enterprise time)."""
    now = now or timezone.now()
    if not 0 < extra <= MAX_TOKENS:
        raise Refused(
            f"Give between 1 and {fmt(MAX_TOKENS)} tokens.", rows={"extra": "Out of range."}
        )
    locked = Enterprise.objects.lock(enterprise)
    check_until(locked, until, now)
    user = User.objects.in_enterprise(locked).filter(pk=user_id).first()
    if user is None:
        raise Refused("No such user in this organization.", code="not_found")
    if user.is_banned:
        raise Refused(f"{user.email} is disabled; activate them first.", code="state")
    if user.max_inference_tokens < MIN_PAID_INFERENCE:
        # The extra never counts towards the minimum, so its end cannot break the rule.
        raise Refused(
            f"{user.email} holds {fmt(user.max_inference_tokens)} Max Inference Tokens, under "
            f"the {fmt(MIN_PAID_INFERENCE)} a Paid user needs. Raise the allocation itself "
            "first; a temporary extra comes on top of it.",
            code="minimum",
        )
    for due in TemporaryAllocation.objects.due(now).filter(user=user).select_related("user"):
        _end(due, actor, "ended", now)
    current = TemporaryAllocation.objects.active(now).filter(user=user).first()
    if current is not None:
        raise Refused(
            f"{user.email} already has +{fmt(current.extra_inference)} until "
            f"{day(current.until)}. End it first, then give the new amount.",
            code="state",
        )
    refuse_short(locked, "inference", extra, f"Giving {user.email} +{fmt(extra)}")
    row = TemporaryAllocation.objects.create(
        enterprise=locked,
        user=user,
        extra_inference=extra,
        until=until,
        ends_at=ends_at(until, locked),
        created_by=actor,
        created_at=now,
        usage_request=usage_request,
    )
    log_activity(
        actor=actor,
        action=Action.TEMPORARY_ALLOCATION_GRANTED,
        enterprise=locked,
        target=user.email,
        old={"extra_inference": 0},
        new={"extra_inference": extra, "until": until.isoformat()},
    )
    return row


@retrying
def end_early(
    *, actor: User, enterprise: Enterprise, user_id: int, now: dt.datetime | None = None
) -> TemporaryAllocation:
    """An admin ends a user's temporary allocation before its date (frees the tokens now)."""
    now = now or timezone.now()
    locked = Enterprise.objects.lock(enterprise)
    row = (
        TemporaryAllocation.objects.active(now)
        .filter(enterprise=locked, user_id=user_id, user__enterprise=locked)
        .select_related("user")
        .first()
    )
    if row is None:
        raise Refused("This user has no temporary allocation to end.", code="state")
    _end(row, actor, "ended early", now)
    return row


@dataclass(frozen=True)
class ExpireOutcome:
    ended: int
    enterprises: int


def expire_due(now: dt.datetime | None = None) -> ExpireOutcome:
    """Mark every temporary allocation past its end as ended, one enterprise at a time.

    Idempotent: a second run finds nothing due. The quota and the pool stopped counting
    the extras at their end already; this keeps the table tidy and writes the log rows.
    """
    now = now or timezone.now()
    ids = (
        TemporaryAllocation.objects.due(now)
        .values_list("enterprise_id", flat=True)
        .distinct()
        .order_by("enterprise_id")
    )
    ended = enterprises = 0
    for enterprise_id in list(ids):
        count = _expire_enterprise(enterprise_id, now)
        ended += count
        enterprises += 1 if count else 0
    return ExpireOutcome(ended, enterprises)


@retrying
def _expire_enterprise(enterprise_id: int, now: dt.datetime) -> int:
    locked = Enterprise.objects.lock(Enterprise.objects.get(pk=enterprise_id))
    rows = list(
        TemporaryAllocation.objects.due(now)
        .filter(enterprise=locked)
        .select_related("user", "enterprise")
        .order_by("id")
    )
    for row in rows:
        _end(row, None, "until date passed", now)
    return len(rows)
