"""Usage-increase requests: a person asks for more tokens, an admin approves or declines.

Approval goes through the same services as any other allocation change: a permanent
increase is one tokens.pool.set_allocations change, a dated one a tokens.temporary.grant,
both under the enterprise lock. Approve and decline lock the enterprise and then the
request's row, so a request is decided exactly once; the loser of a race hears who won.
The person hears the outcome by email after commit (and on /settings/).
"""

from __future__ import annotations

import datetime as dt

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts.models import Enterprise, User
from asksage_admin.core.audit import Action, log_activity
from asksage_admin.core.errors import Refused
from asksage_admin.core.fields import MAX_TOKENS
from asksage_admin.core.formats import day
from asksage_admin.core.formats import tokens as fmt
from asksage_admin.core.retry import retrying
from tokens import pool, temporary
from tokens.models import UsageRequest

POOLS = {
    # Request pool -> (allocation column in tokens.pool.COLUMNS, purchase pool).
    UsageRequest.Pool.INFERENCE: ("inference", "inference"),
    UsageRequest.Pool.EMBEDDING: ("embedding", "training"),
}
MAX_REASON = 500


def _check_amount(amount: int, field: str = "amount") -> None:
    if not 0 < amount <= MAX_TOKENS:
        raise Refused(
            f"Ask for between 1 and {fmt(MAX_TOKENS)} tokens.", rows={field: "Out of range."}
        )


def _check_until(enterprise: Enterprise, pool_name: str, until: dt.date | None) -> None:
    if until is None:
        return
    if pool_name != UsageRequest.Pool.INFERENCE:
        raise Refused(
            "Only inference tokens can be given until a date; embedding tokens are a "
            "lifetime allocation.",
            rows={"until": "Inference only."},
        )
    temporary.check_until(enterprise, until)


@retrying
def ask(
    *, user: User, pool_name: str, amount: int, reason: str, until: dt.date | None = None
) -> UsageRequest:
    """A person asks for `amount` more tokens of one pool; one open request per pool."""
    if pool_name not in POOLS:
        raise Refused("Choose the inference or the embedding pool.", rows={"pool": "Unknown."})
    _check_amount(amount)
    reason = " ".join(reason.split())
    if not reason:
        raise Refused("Say why you need more tokens.", rows={"reason": "Required."})
    if len(reason) > MAX_REASON:
        raise Refused(f"Keep the reason under {MAX_REASON} characters.", rows={"reason": "Long."})
    if user.enterprise_id is None or user.is_banned:
        raise Refused("Only active users of an organization can ask for tokens.", code="state")
    enterprise = Enterprise.objects.lock(user.enterprise)  # type: ignore[arg-type]  # id checked
    if not enterprise.is_active:
        raise Refused(f"{enterprise.name} is not active.", code="state")
    _check_until(enterprise, pool_name, until)
    if UsageRequest.objects.filter(user=user, pool=pool_name, status="open").exists():
        raise Refused(
            "You already have an open request for this pool; your admins will answer it.",
            code="duplicate",
        )
    request = UsageRequest.objects.create(
        enterprise=enterprise,
        user=user,
        pool=pool_name,
        amount=amount,
        reason=reason,
        until=until,
    )
    log_activity(
        actor=user,
        action=Action.USAGE_REQUESTED,
        enterprise=enterprise,
        target=user.email,
        new={
            "request": request.pk,
            "pool": pool_name,
            "amount": amount,
            "until": until.isoformat() if until else None,
        },
    )
    return request


def _locked_open(enterprise: Enterprise, request_id: int) -> tuple[Enterprise, UsageRequest]:
    """The enterprise lock first (the order every pool writer uses), then the request row."""
    locked = Enterprise.objects.lock(enterprise)
    request = (
        UsageRequest.objects.select_for_update(of=("self",))
        .select_related("user", "decided_by")
        .filter(enterprise=locked, pk=request_id)
        .first()
    )
    if request is None:
        raise Refused("No such request in this organization.", code="not_found")
    if not request.is_open:
        who = request.decided_by.email if request.decided_by else "an admin"
        raise Refused(
            f"This request was already {request.status} by {who}; nothing changed.",
            code="state",
        )
    return locked, request


@retrying
def approve(
    *,
    actor: User,
    enterprise: Enterprise,
    request_id: int,
    amount: int | None = None,
    until: dt.date | None = None,
    note: str = "",
) -> UsageRequest:
    """Grant the request (or a different amount / end date) through the pool's rules."""
    locked, request = _locked_open(enterprise, request_id)
    amount = request.amount if amount is None else amount
    _check_amount(amount)
    _check_until(locked, request.pool, until)
    user = request.user
    if user.enterprise_id != locked.pk or user.is_banned:
        raise Refused(
            f"{user.email} is no longer an active user here; decline the request instead.",
            code="state",
        )
    column, pool_name = POOLS[UsageRequest.Pool(request.pool)]
    temporary.refuse_short(locked, pool_name, amount, f"Approving {fmt(amount)} for {user.email}")
    if until is not None:
        temporary.grant(
            actor=actor,
            enterprise=locked,
            user_id=user.pk,
            extra=amount,
            until=until,
            usage_request=request,
        )
    else:
        current = getattr(user, pool.COLUMNS[column][0])
        pool.set_allocations(
            actor=actor,
            enterprise=locked,
            changes=[pool.AllocationChange(user.pk, column, current + amount, current)],
        )
    request.status = UsageRequest.Status.APPROVED
    request.approved_amount = amount
    return _decide(actor, locked, request, note, until)


@retrying
def decline(*, actor: User, enterprise: Enterprise, request_id: int, note: str) -> UsageRequest:
    """Say no, with a reason the person reads."""
    note = " ".join(note.split())
    if not note:
        raise Refused("Give the person a reason.", rows={"note": "Required."})
    if len(note) > MAX_REASON:
        raise Refused(f"Keep the reason under {MAX_REASON} characters.", rows={"note": "Long."})
    locked, request = _locked_open(enterprise, request_id)
    request.status = UsageRequest.Status.DECLINED
    return _decide(actor, locked, request, note, None)


def _decide(
    actor: User, enterprise: Enterprise, request: UsageRequest, note: str, until: dt.date | None
) -> UsageRequest:
    request.decided_by = actor
    request.decided_at = timezone.now()
    request.decision_note = " ".join(note.split())[:MAX_REASON]
    request.save(
        update_fields=["status", "approved_amount", "decided_by", "decided_at", "decision_note"]
    )
    approved = request.status == UsageRequest.Status.APPROVED
    log_activity(
        actor=actor,
        action=Action.USAGE_REQUEST_APPROVED if approved else Action.USAGE_REQUEST_DECLINED,
        enterprise=enterprise,
        target=request.user.email,
        old={"request": request.pk, "status": "open", "amount": request.amount},
        new={
            "status": request.status,
            "amount": request.approved_amount,
            "until": until.isoformat() if until else None,
            "note": request.decision_note,
        },
    )
    email, subject, body = request.user.email, *_outcome_mail(request, until)
    transaction.on_commit(lambda: send_mail(subject, body, from_email=None, recipient_list=[email]))
    return request


def _outcome_mail(request: UsageRequest, until: dt.date | None) -> tuple[str, str]:
    asked = f"{fmt(request.amount)} more {request.pool} tokens"
    if request.status == UsageRequest.Status.APPROVED:
        given = f"{fmt(request.approved_amount)} more {request.pool} tokens"
        when = f" until the end of {day(until)}" if until else ""
        return (
            "Your request for more tokens was approved",
            f"You asked for {asked}. An admin approved {given}{when}.\n"
            + (f"\nNote: {request.decision_note}\n" if request.decision_note else "")
            + "\nYour Settings page shows your allocation.\n",
        )
    return (
        "Your request for more tokens was declined",
        f"You asked for {asked}. An admin declined the request:\n\n"
        f"{request.decision_note}\n\nYour Settings page shows your allocation.\n",
    )
