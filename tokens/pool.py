"""The pool: purchases in, allocations out, and the rules that keep one within the other.

Every write runs in one transaction (retried on a deadlock, see core.retry) and takes the
enterprise row lock first (`Enterprise.objects.lock`), the same lock membership and
provisioning take, so the checks see a pool no concurrent transaction is changing. Amounts
arrive as ints (forms and the JSON endpoint parse them); a refusal raises `Refused` and
changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Case, Value, When
from django.utils import timezone

from accounts.models import Enterprise, User
from asksage_admin.core.audit import Action, log_activities, log_activity
from asksage_admin.core.errors import Refused
from asksage_admin.core.fields import MAX_TOKENS
from asksage_admin.core.formats import tokens as fmt
from asksage_admin.core.retry import retrying
from tokens.models import TokenPurchase
from tokens.queries import assigned_totals

MIN_PAID_INFERENCE = 200_000
MAX_CHANGES_PER_SAVE = 1000

# Allocation column -> (User field, purchase pool, label people see).
COLUMNS = {
    "inference": ("max_inference_tokens", "inference", "Max Inference Tokens"),
    "embedding": ("max_embedding_tokens", "training", "Max Embedding Tokens"),
}


def purchased_totals(enterprise: Enterprise) -> dict[str, int]:
    return TokenPurchase.objects.filter(enterprise=enterprise).totals()


def refuse_short_pool(enterprise: Enterprise, needed: int, who: str) -> None:
    """Refuse when fewer than `needed` inference tokens are unassigned (call under the lock)."""
    free = purchased_totals(enterprise)["inference"] - assigned_totals(enterprise)["inference"]
    if free < needed:
        raise Refused(
            f"{who} needs {fmt(needed)} inference tokens but only {fmt(max(free, 0))} are "
            "unassigned. Lower someone's allocation or buy more tokens first: contact us at "
            f"{settings.SALES_EMAIL}.",
            code="over_pool",
        )


def allocation_log(
    actor: User, enterprise: Enterprise, user: User, name: str, old: int, new: int
) -> dict:
    """The activity-log row of one allocation change (old -> new), for log_activities."""
    return {
        "actor": actor,
        "action": Action.ALLOCATION_CHANGED,
        "enterprise": enterprise,
        "target": user.email,
        "old": {name: old},
        "new": {name: new},
    }


# --- Purchases --------------------------------------------------------------------------


def check_purchase(enterprise: Enterprise, inference: int, training: int) -> None:
    """Refuse a ledger line that moves nothing or takes a pool below what is assigned."""
    if inference == 0 and training == 0:
        raise Refused("A purchase line must move at least one pool.", rows={"__all__": ""})
    purchased, assigned = purchased_totals(enterprise), assigned_totals(enterprise)
    rows = {}
    for name, delta, label in (
        ("inference", inference, "inference_tokens"),
        ("training", training, "training_tokens"),
    ):
        after = purchased[name] + delta
        if delta < 0 and after < assigned[name]:
            rows[label] = (
                f"This correction would leave {fmt(after)} purchased {name} tokens, below the "
                f"{fmt(assigned[name])} already assigned. Lower allocations first."
            )
    if rows:
        raise Refused(" ".join(rows.values()), code="over_pool", rows=rows)


@retrying
def record_purchase(
    *,
    actor: User,
    enterprise: Enterprise,
    inference_tokens: int,
    training_tokens: int,
    reference: str,
    purchased_on: dt.date | None = None,
    note: str = "",
) -> TokenPurchase:
    """Append one line to the ledger (negative amounts correct an earlier line)."""
    rows = {}
    amounts = {"inference_tokens": inference_tokens, "training_tokens": training_tokens}
    for name, amount in amounts.items():
        if abs(amount) > MAX_TOKENS:
            rows[name] = f"That is more than {fmt(MAX_TOKENS)} tokens; check the number."
    if not reference.strip():
        rows["reference"] = "Enter the invoice or purchase order number."
    if rows:
        raise Refused(" ".join(rows.values()), rows=rows)
    enterprise = Enterprise.objects.lock(enterprise)
    check_purchase(enterprise, amounts["inference_tokens"], amounts["training_tokens"])
    before = purchased_totals(enterprise)
    purchase = TokenPurchase.objects.create(
        enterprise=enterprise,
        inference_tokens=amounts["inference_tokens"],
        training_tokens=amounts["training_tokens"],
        reference=reference.strip(),
        purchased_on=purchased_on or timezone.localdate(),
        note=note.strip(),
        recorded_by=actor,
    )
    log_activity(
        actor=actor,
        action=Action.PURCHASE_RECORDED,
        enterprise=enterprise,
        target=purchase.reference,
        old={"purchased_inference": before["inference"], "purchased_training": before["training"]},
        new={
            "purchased_inference": before["inference"] + purchase.inference_tokens,
            "purchased_training": before["training"] + purchase.training_tokens,
        },
    )
    return purchase


# --- Allocations ------------------------------------------------------------------------


@dataclass(frozen=True)
class AllocationChange:
    """One cell edit: the new value and the value the editor loaded (to detect conflicts)."""

    user_id: int
    column: str
    value: int
    expected: int


@dataclass(frozen=True)
class AppliedChange:
    user_id: int
    email: str
    column: str
    old: int
    new: int


def _check_shape(changes: Sequence[AllocationChange]) -> None:
    if not changes:
        raise Refused("There are no changes to save.")
    if len(changes) > MAX_CHANGES_PER_SAVE:
        raise Refused(f"Save at most {MAX_CHANGES_PER_SAVE} rows at once.")
    rows: dict[int, str] = {}
    seen: set[tuple[int, str]] = set()
    for change in changes:
        if change.column not in COLUMNS:
            raise Refused("Only Max Inference Tokens and Max Embedding Tokens can be edited.")
        if (change.user_id, change.column) in seen:
            rows[change.user_id] = "This row appears twice in one save."
        elif change.value < 0:
            rows[change.user_id] = "Tokens cannot be negative."
        elif change.value > MAX_TOKENS:
            rows[change.user_id] = f"That is more than {fmt(MAX_TOKENS)} tokens; check the number."
        seen.add((change.user_id, change.column))
    if rows:
        raise Refused("Nothing was saved: fix the marked rows.", rows=rows)


def _current(user: User, change: AllocationChange) -> int:
    return getattr(user, COLUMNS[change.column][0])


def _check_changes(
    enterprise: Enterprise, changes: Sequence[AllocationChange], users: dict[int, User]
) -> None:
    """Conflicts first (the editor's view is stale), then the per-user minimum, then pools."""
    stale = {
        c.user_id: f"Changed by someone else to {fmt(_current(users[c.user_id], c))} since you "
        "loaded the page."
        for c in changes
        if c.expected != _current(users[c.user_id], c)
    }
    if stale:
        emails = ", ".join(users[pk].email for pk in stale)
        raise Refused(
            f"Someone else changed {emails} since you loaded the page. Nothing was saved; "
            "reload to see the current values.",
            code="conflict",
            rows=stale,
        )
    low = {
        c.user_id: (
            f"A Paid user needs at least {fmt(MIN_PAID_INFERENCE)} Max Inference Tokens; "
            "disable the user first to go lower."
        )
        for c in changes
        if c.column == "inference"
        and not users[c.user_id].is_banned
        and c.value < MIN_PAID_INFERENCE
        and c.value != c.expected
    }
    if low:
        raise Refused("Nothing was saved: fix the marked rows.", code="minimum", rows=low)
    purchased, assigned = purchased_totals(enterprise), assigned_totals(enterprise)
    for column, (_, pool, label) in COLUMNS.items():
        mine = [c for c in changes if c.column == column]
        after = assigned[pool] + sum(c.value - c.expected for c in mine)
        if after > purchased[pool] and after > assigned[pool]:
            over = after - purchased[pool]
            raise Refused(
                f"{label}: these changes would assign {fmt(after)} tokens, {fmt(over)} more "
                f"than the {fmt(purchased[pool])} purchased. Nothing was saved.",
                code="over_pool",
                rows={
                    c.user_id: f"Over the pool by {fmt(over)} in total."
                    for c in mine
                    if c.value > c.expected
                },
            )


@retrying
def set_allocations(
    *, actor: User, enterprise: Enterprise, changes: Sequence[AllocationChange]
) -> list[AppliedChange]:
    """Apply allocation edits all or nothing, under the enterprise lock.

    Each change carries the value its editor loaded; a row changed since then is a conflict.
    The writes are one UPDATE per column and one INSERT of log rows, so the lock is held for
    a fixed number of queries whatever the number of rows.
    """
    _check_shape(changes)
    locked = Enterprise.objects.lock(enterprise)
    users = User.objects.in_enterprise(locked).in_bulk({c.user_id for c in changes})
    missing = {c.user_id for c in changes} - set(users)
    if missing:
        raise Refused(
            "No such user in this organization.",
            code="not_found",
            rows=dict.fromkeys(missing, "Not a user of this organization."),
        )
    _check_changes(locked, changes, users)
    applied = [
        AppliedChange(c.user_id, users[c.user_id].email, c.column, c.expected, c.value)
        for c in changes
        if c.value != c.expected
    ]
    for column, (name, _, _) in COLUMNS.items():
        mine = [a for a in applied if a.column == column]
        if mine:
            new_value = Case(*(When(pk=a.user_id, then=Value(a.new)) for a in mine))
            User.objects.filter(pk__in=[a.user_id for a in mine]).update(**{name: new_value})
    log_activities(
        [
            allocation_log(actor, locked, users[a.user_id], COLUMNS[a.column][0], a.old, a.new)
            for a in applied
        ]
    )
    return applied
