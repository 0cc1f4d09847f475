"""Quota arithmetic: which month an instant belongs to, what is left, when it resets.

Months are keys, not jobs: a user's monthly inference quota "resets" simply because a new
month has no MonthlyUsage row yet. The embedding (training) quota is lifetime (UsageTotal).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from django.utils import timezone

from accounts.models import User
from metrics.models import MonthlyUsage, UsageTotal


def usage_month(moment: datetime, tz: tzinfo) -> date:
    """First day of the calendar month containing `moment` in time zone `tz` (roll-up key)."""
    return moment.astimezone(tz).date().replace(day=1)


def add_months(month: date, months: int) -> date:
    """The first day of the month `months` after (or before, if negative) `month`."""
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def next_month(month: date) -> date:
    return add_months(month, 1)


@dataclass(frozen=True)
class UsageSnapshot:
    """A user's allocation against usage: this month's inference, lifetime embedding."""

    month: date
    resets_on: date
    time_zone: str
    inference_allocation: int
    inference_used: int
    embedding_allocation: int
    embedding_used: int

    @property
    def inference_remaining(self) -> int:
        return max(0, self.inference_allocation - self.inference_used)

    @property
    def inference_overage(self) -> int:
        return max(0, self.inference_used - self.inference_allocation)

    @property
    def embedding_remaining(self) -> int:
        return max(0, self.embedding_allocation - self.embedding_used)

    @property
    def embedding_overage(self) -> int:
        return max(0, self.embedding_used - self.embedding_allocation)

    def remaining(self, kind: str) -> int:
        return self.inference_remaining if kind == "inference" else self.embedding_remaining


def usage_snapshot(user: User, *, now: datetime | None = None) -> UsageSnapshot | None:
    """The user's quota position, read from the roll-ups (two indexed lookups).

    None for a user outside any enterprise: they have no allocation and no months to count.
    """
    enterprise = user.enterprise
    if enterprise is None:
        return None
    month = usage_month(now or timezone.now(), enterprise.tzinfo)
    monthly = (
        MonthlyUsage.objects.filter(user=user, month=month)
        .values_list("inference_tokens", flat=True)
        .first()
    )
    lifetime = (
        UsageTotal.objects.filter(user=user).values_list("embedding_tokens", flat=True).first()
    )
    return UsageSnapshot(
        month=month,
        resets_on=next_month(month),
        time_zone=enterprise.time_zone,
        inference_allocation=user.max_inference_tokens,
        inference_used=monthly or 0,
        embedding_allocation=user.max_embedding_tokens,
        embedding_used=lifetime or 0,
    )
