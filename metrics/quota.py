"""Quota: which month an instant belongs to, what is left, when it resets, and the decision.

Months are keys, not jobs: a user's monthly inference quota "resets" simply because a new
month has no MonthlyUsage row yet. The embedding (training) quota is lifetime (UsageTotal).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from django.utils import timezone

from accounts.models import Enterprise, User
from asksage_admin.core.prepared import prepared_cursor
from metrics.blocking import NO_ENTERPRISE, UNKNOWN_USER, BlockReason, block_reasons
from metrics.keys import log_key_use
from metrics.models import IntegrationKey, MonthlyUsage, UsageKind, UsageTotal
from tokens.models import ACTIVE_EXTRA_SQL, TemporaryAllocation

# Far above any real request, and low enough that 1,000 of them cannot overflow a BIGINT.
MAX_EVENT_TOKENS = 10**12


class UsageRequestError(ValueError):
    """A whole request the usage rules refuse (as opposed to one rejected event)."""

    def __init__(self, code: str, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


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
    # A temporary allocation still counting, already included in inference_allocation.
    inference_extra: int = 0
    extra_until: date | None = None

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

    @property
    def near_cap(self) -> bool:
        """80 % or more of either allocation used: Settings suggests asking for more."""
        return _near(self.inference_used, self.inference_allocation) or _near(
            self.embedding_used, self.embedding_allocation
        )

    def remaining(self, kind: str) -> int:
        return self.inference_remaining if kind == "inference" else self.embedding_remaining


def _near(used: int, cap: int) -> bool:
    return used * 5 >= cap * 4 if cap > 0 else used > 0


def usage_snapshot(user: User, *, now: datetime | None = None) -> UsageSnapshot | None:
    """The user's quota position, read from the roll-ups (three indexed lookups).

    The inference allocation includes a temporary allocation until its end (TemporaryAllocation).

    None for a user outside any enterprise: they have no allocation and no months to count.
    """
    enterprise = user.enterprise
    if enterprise is None:
        return None
    now = now or timezone.now()
    month = usage_month(now, enterprise.tzinfo)
    monthly = (
        MonthlyUsage.objects.filter(user=user, month=month)
        .values_list("inference_tokens", flat=True)
        .first()
    )
    lifetime = (
        UsageTotal.objects.filter(user=user).values_list("embedding_tokens", flat=True).first()
    )
    extra, until = (
        TemporaryAllocation.objects.active(now)
        .filter(user=user, enterprise=enterprise)
        .values_list("extra_inference", "until")
        .first()
    ) or (0, None)
    return UsageSnapshot(
        month=month,
        resets_on=next_month(month),
        time_zone=enterprise.time_zone,
        inference_allocation=user.max_inference_tokens + extra,
        inference_used=monthly or 0,
        embedding_allocation=user.max_embedding_tokens,
        embedding_used=lifetime or 0,
        inference_extra=extra,
        extra_until=until,
    )


@dataclass(frozen=True)
class QuotaDecision:
    decision: str  # allowed | denied
    reason: str
    remaining: int
    resets_at: date | None
    time_zone: str | None = None
    # Every reason that applies, most fundamental first (metrics.blocking); empty if allowed.
    reasons: tuple[BlockReason, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision == "allowed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "remaining": self.remaining,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
            "time_zone": self.time_zone,
            "reasons": [reason.as_dict() for reason in self.reasons],
        }


def check_quota(
    *,
    user_email: str,
    kind: str,
    tokens: int,
    integration: IntegrationKey | None = None,
    now: datetime | None = None,
) -> QuotaDecision:
    """May this user spend `tokens` of `kind` now? Reads the roll-ups, never the ledger.

    Order of reasons: unknown_user, no_enterprise, banned, enterprise_pending,
    enterprise_suspended, quota_exhausted (nothing left), insufficient_quota (some left,
    not enough). Status denials report remaining 0: nothing may be spent.
    `reasons` lists every reason that applies, not only the first (metrics.blocking), from
    the same row: no extra query.
    """
    if kind not in UsageKind.values:
        raise UsageRequestError(
            "invalid", f"kind must be one of {', '.join(UsageKind.values)}.", field="kind"
        )
    if isinstance(tokens, bool) or not isinstance(tokens, int):
        raise UsageRequestError("invalid", "tokens must be a whole number.", field="tokens")
    if not 0 < tokens <= MAX_EVENT_TOKENS:
        raise UsageRequestError(
            "invalid", f"tokens must be between 1 and {MAX_EVENT_TOKENS}.", field="tokens"
        )
    now = now or timezone.now()
    # One statement, no model instances: this is asked before every model call.
    with prepared_cursor() as cursor:
        cursor.execute(_POSITION_SQL, [now, *_candidate_months(now), user_email.strip().lower()])
        rows = cursor.fetchall()
    if not rows:
        unknown = BlockReason(UNKNOWN_USER, "No user has this email address.")
        return QuotaDecision("denied", "unknown_user", 0, None, reasons=(unknown,))
    user_status, inference_cap, embedding_cap, enterprise_id, status, zone, *_, extra = rows[0]
    inference_cap += extra  # a temporary allocation counts until its end, command run or not
    if enterprise_id is None:
        outside = BlockReason(NO_ENTERPRISE, "The user is not part of an organization.")
        return QuotaDecision("denied", "no_enterprise", 0, None, reasons=(outside,))
    if integration is not None:
        log_key_use(integration, {enterprise_id}, endpoint="quota/check")
    month = usage_month(now, zoneinfo.ZoneInfo(zone))
    resets_at = next_month(month) if kind == UsageKind.INFERENCE else None
    inference_used = next((row[7] for row in rows if _as_date(row[6]) == month), 0) or 0
    embedding_used = rows[0][8] or 0
    # From the same row: the reasons cost no query.
    reasons = tuple(
        block_reasons(
            user_status=user_status,
            enterprise_status=status,
            time_zone=zone,
            resets_on=next_month(month),
            inference_allocation=inference_cap,
            inference_used=inference_used,
            embedding_allocation=embedding_cap,
            embedding_used=embedding_used,
            kind=kind,
            tokens_requested=tokens,
        )
    )
    reason = _status_denial(user_status, status)
    if reason:
        return QuotaDecision("denied", reason, 0, resets_at, zone, reasons)
    if kind == UsageKind.INFERENCE:
        remaining = max(0, inference_cap - inference_used)
    else:
        remaining = max(0, embedding_cap - embedding_used)
    if remaining == 0:
        return QuotaDecision("denied", "quota_exhausted", 0, resets_at, zone, reasons)
    if remaining < tokens:
        return QuotaDecision("denied", "insufficient_quota", remaining, resets_at, zone, reasons)
    return QuotaDecision("allowed", "within_quota", remaining, resets_at, zone, reasons)


# The user, their enterprise and roll-ups by the unique email index. The month in the
# enterprise's zone is one of three around the UTC month; Python picks it (usage_month),
# exactly as ingestion keys the roll-up. The last column is the temporary extra counting now.
_POSITION_SQL = f"""
SELECT u.status, u.max_inference_tokens, u.max_embedding_tokens, e.id, e.status, e.time_zone,
       m.month, m.inference_tokens, t.embedding_tokens,
       {ACTIVE_EXTRA_SQL.format(user="u.id", enterprise="u.enterprise_id", now="%s")}
FROM accounts_user u
LEFT JOIN accounts_enterprise e ON e.id = u.enterprise_id
LEFT JOIN metrics_monthlyusage m ON m.user_id = u.id AND m.month IN (%s, %s, %s)
LEFT JOIN metrics_usagetotal t ON t.user_id = u.id
WHERE u.email = %s
"""  # noqa: S608 (our names only; values are parameters)


def _candidate_months(now: datetime) -> list[date]:
    month = usage_month(now, UTC)
    return [add_months(month, -1), month, add_months(month, 1)]


def _as_date(value: date | str | None) -> date | None:
    # A raw cursor returns DATE as a date on PostgreSQL and as text on SQLite.
    return date.fromisoformat(value) if isinstance(value, str) else value


def _status_denial(user_status: str, enterprise_status: str) -> str:
    if user_status == User.Status.BANNED:
        return "banned"
    if enterprise_status == Enterprise.Status.PENDING:
        return "enterprise_pending"
    if enterprise_status == Enterprise.Status.SUSPENDED:
        return "enterprise_suspended"
    return ""
