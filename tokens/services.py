"""Write rules of token management: purchases, provisioning, allocations, user management.

Every function takes the acting user keyword-only, runs in one transaction, locks the
Enterprise row first (`_lock`) and writes its own activity-log rows with old -> new values.
Because *every* write to an enterprise's pool, users, roles or status takes that same lock,
the checks below see a pool no concurrent transaction is changing (SPEC §3). A refusal
raises `Refused` and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from accounts.models import Enterprise, Invitation, User
from metrics.models import ActivityLog
from metrics.services import log_activity
from tokens.models import TokenPurchase
from tokens.queries import assigned_totals

Action = ActivityLog.Action

MIN_PAID_INFERENCE = 200_000
ACTIVATION_MIN_USERS = 4
ACTIVATION_INFERENCE_PER_USER = 500_000
# Far above any real purchase, far below BigIntegerField's limit: a typo, not a sale.
MAX_TOKENS = 10**15
MAX_CHANGES_PER_SAVE = 1000
INVITATION_LIFETIME = dt.timedelta(days=7)

# Allocation column -> (User field, purchase pool, label people see).
COLUMNS = {
    "inference": ("max_inference_tokens", "inference", "Max Inference Tokens"),
    "embedding": ("max_embedding_tokens", "training", "Max Embedding Tokens"),
}


class Refused(Exception):
    """A write rule said no; nothing was changed.

    `message` is for people. `rows` maps a row key (a user id, an email or a form field name)
    to the reason that concerns that row, so a table or form can show it in place.
    `code` is stable for programs: invalid, not_found, conflict, minimum, over_pool,
    last_admin, state, activation.
    """

    def __init__(self, message: str, *, code: str = "invalid", rows: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.rows: dict = rows or {}


def fmt(n: int) -> str:
    return f"{n:,}"


def parse_tokens(value: object, *, allow_negative: bool = False) -> int:
    """A whole number of tokens from an int or text such as "300,000"; ValueError says why."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("Enter a whole number of tokens.")
    if isinstance(value, str):
        text = re.sub(r"[\s,_]", "", value)
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError("Enter a whole number of tokens (digits only).")
        value = int(text)
    if value < 0 and not allow_negative:
        raise ValueError("Tokens cannot be negative.")
    if abs(value) > MAX_TOKENS:
        raise ValueError(f"That is more than {fmt(MAX_TOKENS)} tokens; check the number.")
    return value


def _lock(enterprise: Enterprise) -> Enterprise:
    # The one lock of this module: SELECT ... FOR UPDATE on the enterprise row. Taking it
    # before reading users or purchases serialises every change to one enterprise's pool.
    return Enterprise.objects.select_for_update().get(pk=enterprise.pk)


def _purchased(enterprise: Enterprise) -> dict[str, int]:
    return TokenPurchase.objects.filter(enterprise=enterprise).totals()


def _unassigned_inference(enterprise: Enterprise) -> int:
    return _purchased(enterprise)["inference"] - assigned_totals(enterprise)["inference"]


def _refuse_short_pool(enterprise: Enterprise, needed: int, who: str) -> None:
    free = _unassigned_inference(enterprise)
    if free < needed:
        raise Refused(
            f"{who} needs {fmt(needed)} inference tokens but only {fmt(max(free, 0))} are "
            "unassigned. Lower someone's allocation or buy more tokens first.",
            code="over_pool",
        )


def _log_allocation(actor: User, enterprise: Enterprise, user: User, name: str, old: int, new: int):
    log_activity(
        actor=actor,
        action=Action.ALLOCATION_CHANGED,
        enterprise=enterprise,
        target=user.email,
        old={name: old},
        new={name: new},
    )


# --- Purchases --------------------------------------------------------------------------


def check_purchase(enterprise: Enterprise, inference: int, training: int) -> None:
    """Refuse a ledger line that moves nothing or takes a pool below what is assigned."""
    if inference == 0 and training == 0:
        raise Refused("A purchase line must move at least one pool.", rows={"__all__": ""})
    purchased, assigned = _purchased(enterprise), assigned_totals(enterprise)
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


@transaction.atomic
def record_purchase(
    *,
    actor: User,
    enterprise: Enterprise,
    inference_tokens: object,
    training_tokens: object,
    reference: str,
    purchased_on: dt.date | None = None,
    note: str = "",
) -> TokenPurchase:
    """Append one line to the ledger (negative amounts correct an earlier line)."""
    rows = {}
    amounts = {}
    for name, raw in (("inference_tokens", inference_tokens), ("training_tokens", training_tokens)):
        try:
            amounts[name] = parse_tokens(raw or 0, allow_negative=True)
        except ValueError as exc:
            rows[name] = str(exc)
    if not reference.strip():
        rows["reference"] = "Enter the invoice or purchase order number."
    if rows:
        raise Refused(" ".join(rows.values()), rows=rows)
    enterprise = _lock(enterprise)
    check_purchase(enterprise, amounts["inference_tokens"], amounts["training_tokens"])
    before = _purchased(enterprise)
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


# --- Enterprises ------------------------------------------------------------------------


def _full_clean(enterprise: Enterprise) -> None:
    try:
        enterprise.full_clean()
    except ValidationError as exc:
        rows = {name: " ".join(msgs) for name, msgs in exc.message_dict.items()}
        raise Refused(" ".join(rows.values()), rows=rows) from None


@transaction.atomic
def create_enterprise(*, actor: User, name: str, slug: str, time_zone: str = "UTC") -> Enterprise:
    """A new enterprise starts pending: nobody uses it until staff activate it."""
    enterprise = Enterprise(
        name=name.strip(), slug=slug, time_zone=time_zone, status=Enterprise.Status.PENDING
    )
    _full_clean(enterprise)
    enterprise.save()
    log_activity(
        actor=actor,
        action=Action.ENTERPRISE_CREATED,
        enterprise=enterprise,
        target=enterprise.name,
        new={"name": enterprise.name, "slug": enterprise.slug, "time_zone": time_zone},
    )
    return enterprise


@transaction.atomic
def update_enterprise(*, actor: User, enterprise: Enterprise, **values: str) -> Enterprise:
    """Change name, slug or time zone (status changes only through the actions below)."""
    allowed = {"name", "slug", "time_zone"}
    if not set(values) <= allowed:
        raise Refused(f"Only {', '.join(sorted(allowed))} can be edited here.")
    locked = _lock(enterprise)
    old = {k: getattr(locked, k) for k, v in values.items() if getattr(locked, k) != v}
    if not old:
        return locked
    for key in old:
        setattr(locked, key, values[key])
    _full_clean(locked)
    locked.save(update_fields=list(old))
    log_activity(
        actor=actor,
        action=Action.ENTERPRISE_UPDATED,
        enterprise=locked,
        target=locked.name,
        old=old,
        new={k: values[k] for k in old},
    )
    return locked


def activation_problems(enterprise: Enterprise) -> list[str]:
    """Why this enterprise cannot be (re)activated now; empty when it can (SPEC §2.4)."""
    users = User.objects.in_enterprise(enterprise)
    counts = users.aggregate(
        total=Count("id"),
        admins=Count("id", filter=Q(role=User.Role.ADMIN, status=User.Status.PAID)),
        top_up=Sum(
            MIN_PAID_INFERENCE - F("max_inference_tokens"),
            filter=Q(status=User.Status.PAID, max_inference_tokens__lt=MIN_PAID_INFERENCE),
            default=0,
        ),
    )
    purchased = _purchased(enterprise)["inference"]
    total, problems = counts["total"], []
    if total < ACTIVATION_MIN_USERS:
        problems.append(
            f"It has {total} user{'s' if total != 1 else ''}; at least {ACTIVATION_MIN_USERS} "
            "are needed."
        )
    if counts["admins"] < 1:
        problems.append("It has no admin; mark at least one user as admin.")
    needed = ACTIVATION_INFERENCE_PER_USER * total
    if purchased < needed:
        problems.append(
            f"It has purchased {fmt(purchased)} inference tokens; {total} users need at least "
            f"{fmt(needed)} ({fmt(ACTIVATION_INFERENCE_PER_USER)} per user)."
        )
    after = assigned_totals(enterprise)["inference"] + counts["top_up"]
    if after > purchased:
        problems.append(
            f"Giving every Paid user the {fmt(MIN_PAID_INFERENCE)} minimum would assign "
            f"{fmt(after)} inference tokens, more than the {fmt(purchased)} purchased."
        )
    return problems


def _grant_minimums(actor: User, enterprise: Enterprise) -> int:
    """Every Paid user below the minimum gets it (on activation). Returns how many."""
    short = (
        User.objects.in_enterprise(enterprise)
        .paid()
        .filter(max_inference_tokens__lt=MIN_PAID_INFERENCE)
    )
    granted = 0
    for user in short.order_by("pk"):
        old = user.max_inference_tokens
        user.max_inference_tokens = MIN_PAID_INFERENCE
        user.save(update_fields=["max_inference_tokens"])
        _log_allocation(actor, enterprise, user, "max_inference_tokens", old, MIN_PAID_INFERENCE)
        granted += 1
    return granted


def _turn_active(
    actor: User, enterprise: Enterprise, *, from_status: str, action: str, verb: str
) -> Enterprise:
    # The refusal is logged and committed, then raised: an exception inside the atomic
    # block would roll the log row back with everything else.
    with transaction.atomic():
        locked = _lock(enterprise)
        if locked.status != from_status:
            raise Refused(
                f"{locked.name} is {locked.get_status_display().lower()}; only a "
                f"{Enterprise.Status(from_status).label.lower()} enterprise can be {verb}d.",
                code="state",
            )
        problems = activation_problems(locked)
        if problems:
            log_activity(
                actor=actor,
                action=Action.ENTERPRISE_ACTIVATION_REFUSED,
                enterprise=locked,
                target=locked.name,
                new={"reasons": problems},
            )
        else:
            _grant_minimums(actor, locked)
            locked.status = Enterprise.Status.ACTIVE
            locked.activated_at = locked.activated_at or timezone.now()
            locked.save(update_fields=["status", "activated_at"])
            log_activity(
                actor=actor,
                action=action,
                enterprise=locked,
                target=locked.name,
                old={"status": from_status},
                new={"status": locked.status},
            )
    if problems:
        raise Refused(f"Cannot {verb} {locked.name}: " + " ".join(problems), code="activation")
    return locked


def activate_enterprise(*, actor: User, enterprise: Enterprise) -> Enterprise:
    """Pending -> active, if it has enough users, an admin and enough tokens (SPEC §2.4)."""
    return _turn_active(
        actor,
        enterprise,
        from_status=Enterprise.Status.PENDING,
        action=Action.ENTERPRISE_ACTIVATED,
        verb="activate",
    )


def reactivate_enterprise(*, actor: User, enterprise: Enterprise) -> Enterprise:
    """Suspended -> active, under the same checks as the first activation."""
    return _turn_active(
        actor,
        enterprise,
        from_status=Enterprise.Status.SUSPENDED,
        action=Action.ENTERPRISE_REACTIVATED,
        verb="reactivate",
    )


@transaction.atomic
def suspend_enterprise(*, actor: User, enterprise: Enterprise) -> Enterprise:
    """Active -> suspended: the console closes and quota checks say denied; usage is kept."""
    locked = _lock(enterprise)
    if locked.status != Enterprise.Status.ACTIVE:
        raise Refused(
            f"{locked.name} is {locked.get_status_display().lower()}; only an active "
            "enterprise can be suspended.",
            code="state",
        )
    locked.status = Enterprise.Status.SUSPENDED
    locked.save(update_fields=["status"])
    log_activity(
        actor=actor,
        action=Action.ENTERPRISE_SUSPENDED,
        enterprise=locked,
        target=locked.name,
        old={"status": Enterprise.Status.ACTIVE},
        new={"status": locked.status},
    )
    return locked


# --- Attaching users and roles (staff) --------------------------------------------------


def split_emails(text: str) -> list[str]:
    """Emails pasted in any shape (lines, commas, "Name <a@b>"), lower-cased, in order, once."""
    seen: dict[str, None] = {}
    for chunk in re.split(r"[\s,;]+", text or ""):
        email = chunk.strip().strip("<>\"'()").lower()
        if email:
            seen.setdefault(email, None)
    return list(seen)


def check_attachable(enterprise: Enterprise, emails: Sequence[str]) -> list[User]:
    """The registered users named by `emails`, or Refused with a reason per email."""
    found = {u.email: u for u in User.objects.filter(email__in=emails)}
    rows = {}
    for email in emails:
        user = found.get(email)
        try:
            validate_email(email)
        except ValidationError:
            rows[email] = "is not an email address."
            continue
        if user is None:
            rows[email] = "is not registered. Ask them to sign up first."
        elif user.enterprise_id not in (None, enterprise.pk):
            rows[email] = "already belongs to another enterprise."
    if rows:
        listing = "; ".join(f"{email} {reason}" for email, reason in rows.items())
        raise Refused(f"Nothing was attached: {listing}", rows=rows)
    joining = [found[email] for email in emails if found[email].enterprise_id is None]
    if joining and enterprise.pk and enterprise.is_active:
        # In an active enterprise every Paid user holds the minimum from the first moment.
        _refuse_short_pool(
            enterprise, MIN_PAID_INFERENCE * len(joining), f"Attaching {len(joining)} users"
        )
    return [found[email] for email in emails]


@transaction.atomic
def attach_users(
    *, actor: User, enterprise: Enterprise, emails: Sequence[str], role: str = User.Role.MEMBER
) -> list[User]:
    """Attach registered users (all or none). In an active enterprise each gets the minimum."""
    if role not in User.Role.values:
        raise Refused("Unknown role.")
    locked = _lock(enterprise)
    users = [u for u in check_attachable(locked, emails) if u.enterprise_id is None]
    grant = MIN_PAID_INFERENCE if locked.is_active else 0
    for user in users:
        old = {"enterprise": None, "role": user.role, "status": user.status}
        user.enterprise, user.role, user.status = locked, role, User.Status.PAID
        user.max_inference_tokens, user.max_embedding_tokens = grant, 0
        user.save(
            update_fields=[
                "enterprise",
                "role",
                "status",
                "max_inference_tokens",
                "max_embedding_tokens",
            ]
        )
        log_activity(
            actor=actor,
            action=Action.USER_ATTACHED,
            enterprise=locked,
            target=user.email,
            old=old,
            new={
                "enterprise": locked.name,
                "role": role,
                "status": user.status,
                "max_inference_tokens": grant,
            },
        )
    return users


def _roles_after(
    enterprise: Enterprise, admins: Iterable[int], auditors: Iterable[int]
) -> dict[int, tuple[User, str]]:
    admins, auditors = set(admins), set(auditors)
    both = admins & auditors
    users = User.objects.in_enterprise(enterprise).in_bulk()
    if both:
        emails = ", ".join(users[pk].email for pk in both if pk in users)
        raise Refused(f"A user is either admin or auditor, not both: {emails}.")
    unknown = (admins | auditors) - set(users)
    if unknown:
        raise Refused("Only users of this enterprise can be its admins or auditors.")
    after = {}
    for pk, user in users.items():
        role = User.Role.MEMBER
        if pk in admins:
            role = User.Role.ADMIN
        elif pk in auditors:
            role = User.Role.AUDITOR
        after[pk] = (user, role)
    return after


def check_roles(enterprise: Enterprise, *, admins: Iterable[int], auditors: Iterable[int]) -> None:
    """Refuse role choices that leave an active enterprise without a Paid admin."""
    after = _roles_after(enterprise, admins, auditors)
    if enterprise.is_active and not any(
        role == User.Role.ADMIN and not user.is_banned for user, role in after.values()
    ):
        raise Refused(
            f"{enterprise.name} is active and must keep at least one admin who is not disabled.",
            code="last_admin",
        )


@transaction.atomic
def set_roles(
    *, actor: User, enterprise: Enterprise, admins: Iterable[int], auditors: Iterable[int]
) -> list[User]:
    """Staff choose the admins and auditors; everyone else in the enterprise is a member."""
    admins, auditors = list(admins), list(auditors)
    locked = _lock(enterprise)
    check_roles(locked, admins=admins, auditors=auditors)
    changed = []
    for user, role in _roles_after(locked, admins, auditors).values():
        if user.role != role:
            _apply_role(actor, locked, user, role)
            changed.append(user)
    return changed


def _apply_role(actor: User, enterprise: Enterprise, user: User, role: str) -> None:
    old = user.role
    user.role = role
    user.save(update_fields=["role"])
    log_activity(
        actor=actor,
        action=Action.ROLE_CHANGED,
        enterprise=enterprise,
        target=user.email,
        old={"role": old},
        new={"role": role},
    )


# --- Allocations ------------------------------------------------------------------------


@dataclass(frozen=True)
class AllocationChange:
    """One cell edit: `value` as typed, `expected` the value the editor loaded (or None)."""

    user_id: int
    column: str
    value: object
    expected: object | None = None


@dataclass(frozen=True)
class AppliedChange:
    user_id: int
    email: str
    column: str
    old: int
    new: int


@dataclass
class _Parsed:
    change: AllocationChange
    value: int
    expected: int | None
    user: User | None = field(default=None)

    @property
    def current(self) -> int:
        return getattr(self.user, COLUMNS[self.change.column][0])


def _parse_changes(changes: Sequence[AllocationChange]) -> list[_Parsed]:
    if not changes:
        raise Refused("There are no changes to save.")
    if len(changes) > MAX_CHANGES_PER_SAVE:
        raise Refused(f"Save at most {MAX_CHANGES_PER_SAVE} rows at once.")
    rows, parsed, seen = {}, [], set()
    for change in changes:
        if change.column not in COLUMNS:
            raise Refused("Only Max Inference Tokens and Max Embedding Tokens can be edited.")
        if (change.user_id, change.column) in seen:
            rows[change.user_id] = "This row appears twice in one save."
            continue
        seen.add((change.user_id, change.column))
        try:
            value = parse_tokens(change.value)
            expected = None if change.expected is None else parse_tokens(change.expected)
        except ValueError as exc:
            rows[change.user_id] = str(exc)
            continue
        parsed.append(_Parsed(change, value, expected))
    if rows:
        raise Refused("Nothing was saved: fix the marked rows.", rows=rows)
    return parsed


def _check_changes(enterprise: Enterprise, parsed: list[_Parsed]) -> None:
    """Conflicts first (the editor's view is stale), then the per-user minimum, then pools."""
    stale = {
        p.change.user_id: f"Changed by someone else to {fmt(p.current)} since you loaded the page."
        for p in parsed
        if p.expected is not None and p.expected != p.current
    }
    if stale:
        emails = ", ".join(p.user.email for p in parsed if p.change.user_id in stale)
        raise Refused(
            f"Someone else changed {emails} since you loaded the page. Nothing was saved; "
            "reload to see the current values.",
            code="conflict",
            rows=stale,
        )
    low = {
        p.change.user_id: (
            f"A Paid user needs at least {fmt(MIN_PAID_INFERENCE)} Max Inference Tokens; "
            "disable the user first to go lower."
        )
        for p in parsed
        if p.change.column == "inference"
        and not p.user.is_banned
        and p.value < MIN_PAID_INFERENCE
        and p.value != p.current
    }
    if low:
        raise Refused("Nothing was saved: fix the marked rows.", code="minimum", rows=low)
    purchased, assigned = _purchased(enterprise), assigned_totals(enterprise)
    for column, (_, pool, label) in COLUMNS.items():
        mine = [p for p in parsed if p.change.column == column]
        after = assigned[pool] + sum(p.value - p.current for p in mine)
        if after > purchased[pool] and after > assigned[pool]:
            over = after - purchased[pool]
            raise Refused(
                f"{label}: these changes would assign {fmt(after)} tokens, {fmt(over)} more "
                f"than the {fmt(purchased[pool])} purchased. Nothing was saved.",
                code="over_pool",
                rows={
                    p.change.user_id: f"Over the pool by {fmt(over)} in total."
                    for p in mine
                    if p.value > p.current
                },
            )


@transaction.atomic
def set_allocations(
    *, actor: User, enterprise: Enterprise, changes: Sequence[AllocationChange]
) -> list[AppliedChange]:
    """Apply allocation edits all or nothing, under the enterprise lock (SPEC §3)."""
    parsed = _parse_changes(changes)
    locked = _lock(enterprise)
    users = User.objects.in_enterprise(locked).in_bulk({p.change.user_id for p in parsed})
    missing = {p.change.user_id for p in parsed} - set(users)
    if missing:
        raise Refused(
            "No such user in this organization.",
            code="not_found",
            rows=dict.fromkeys(missing, "Not a user of this organization."),
        )
    for p in parsed:
        p.user = users[p.change.user_id]
    _check_changes(locked, parsed)
    applied = []
    for p in parsed:
        name = COLUMNS[p.change.column][0]
        if p.value == p.current:
            continue
        applied.append(AppliedChange(p.user.pk, p.user.email, p.change.column, p.current, p.value))
        User.objects.filter(pk=p.user.pk).update(**{name: p.value})
        _log_allocation(actor, locked, p.user, name, p.current, p.value)
        setattr(p.user, name, p.value)
    return applied


# --- Console user management ------------------------------------------------------------


def _locked_member(user: User) -> tuple[Enterprise, User]:
    if user.enterprise_id is None:
        raise Refused(f"{user.email} is not part of an organization.", code="state")
    enterprise = _lock(user.enterprise)
    return enterprise, User.objects.get(pk=user.pk)


def _refuse_last_admin(enterprise: Enterprise, user: User, doing: str) -> None:
    if not (enterprise.is_active and user.role == User.Role.ADMIN and not user.is_banned):
        return
    others = User.objects.in_enterprise(enterprise).admins().paid().exclude(pk=user.pk)
    if not others.exists():
        raise Refused(
            f"{user.email} is the only admin of {enterprise.name} and cannot be {doing}. "
            "Make someone else an admin first.",
            code="last_admin",
        )


@transaction.atomic
def change_role(*, actor: User, user: User, role: str) -> User:
    """Member / admin / auditor; the last admin of an active enterprise stays admin."""
    if role not in User.Role.values:
        raise Refused("Choose member, admin or auditor.")
    enterprise, user = _locked_member(user)
    if user.role == role:
        return user
    if role != User.Role.ADMIN:
        _refuse_last_admin(enterprise, user, "demoted")
    _apply_role(actor, enterprise, user, role)
    return user


@transaction.atomic
def disable_user(*, actor: User, user: User) -> User:
    """Paid -> Banned: no sign-in, no quota. The allocation stays until an admin lowers it."""
    enterprise, user = _locked_member(user)
    if user.is_banned:
        raise Refused(f"{user.email} is already disabled.", code="state")
    _refuse_last_admin(enterprise, user, "disabled")
    user.status = User.Status.BANNED
    user.save(update_fields=["status"])
    log_activity(
        actor=actor,
        action=Action.USER_DISABLED,
        enterprise=enterprise,
        target=user.email,
        old={"status": User.Status.PAID},
        new={"status": User.Status.BANNED},
    )
    return user


@transaction.atomic
def activate_user(*, actor: User, user: User) -> User:
    """Banned -> Paid, topping the allocation up to the minimum if the pool allows."""
    enterprise, user = _locked_member(user)
    if not user.is_banned:
        raise Refused(f"{user.email} is already active.", code="state")
    old_tokens = user.max_inference_tokens
    if enterprise.is_active and old_tokens < MIN_PAID_INFERENCE:
        _refuse_short_pool(enterprise, MIN_PAID_INFERENCE - old_tokens, f"Activating {user.email}")
        user.max_inference_tokens = MIN_PAID_INFERENCE
    user.status = User.Status.PAID
    user.save(update_fields=["status", "max_inference_tokens"])
    log_activity(
        actor=actor,
        action=Action.USER_ACTIVATED,
        enterprise=enterprise,
        target=user.email,
        old={"status": User.Status.BANNED},
        new={"status": User.Status.PAID},
    )
    if user.max_inference_tokens != old_tokens:
        _log_allocation(
            actor, enterprise, user, "max_inference_tokens", old_tokens, user.max_inference_tokens
        )
    return user


def _join(actor: User, enterprise: Enterprise, user: User, *, via: str) -> User:
    """`user` (no enterprise yet) joins the locked `enterprise` as a Paid member."""
    if user.enterprise_id == enterprise.pk:
        raise Refused(f"{user.email} is already a user of {enterprise.name}.", code="state")
    if user.enterprise_id is not None:
        raise Refused(f"{user.email} already belongs to another organization.", code="state")
    grant = MIN_PAID_INFERENCE if enterprise.is_active else 0
    if grant:
        _refuse_short_pool(enterprise, grant, "A new user")
    user.enterprise, user.role, user.status = enterprise, User.Role.MEMBER, User.Status.PAID
    user.max_inference_tokens, user.max_embedding_tokens = grant, 0
    fields = ["enterprise", "role", "status", "max_inference_tokens", "max_embedding_tokens"]
    user.save(update_fields=fields)
    log_activity(
        actor=actor,
        action=Action.USER_ADDED,
        enterprise=enterprise,
        target=user.email,
        old={"enterprise": None},
        new={"enterprise": enterprise.name, "max_inference_tokens": grant, "via": via},
    )
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AddOutcome:
    email: str
    user: User | None = None
    invitation: Invitation | None = None

    @property
    def invited(self) -> bool:
        return self.invitation is not None


@transaction.atomic
def add_user(*, actor: User, enterprise: Enterprise, email: str, signup_url: str) -> AddOutcome:
    """Add a registered person by email, or email an invitation link to an unknown address.

    `signup_url` is the absolute URL of the registration page; the link adds `?invite=`.
    """
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise Refused("Enter a valid email address.", rows={"email": "Not an email."}) from None
    locked = _lock(enterprise)
    user = User.objects.filter(email__iexact=email).first()
    if user is not None:
        return AddOutcome(email, user=_join(actor, locked, user, via="console"))
    if locked.is_active:
        # Checked now too, so the admin hears about a full pool before the person signs up.
        _refuse_short_pool(locked, MIN_PAID_INFERENCE, "A new user")
    now = timezone.now()
    # A new link replaces any earlier open one for this address.
    Invitation.objects.filter(
        enterprise=locked, email__iexact=email, accepted_at__isnull=True, expires_at__gt=now
    ).update(expires_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        enterprise=locked,
        email=email,
        token_digest=_digest(token),
        invited_by=actor,
        expires_at=now + INVITATION_LIFETIME,
    )
    link = f"{signup_url}?invite={token}"
    send_mail(
        subject=f"You are invited to {locked.name} on AskSage",
        message=(
            f"{actor.email} invited you to join {locked.name} on AskSage.\n\n"
            f"Create your account with this link (valid for {INVITATION_LIFETIME.days} days):\n"
            f"{link}\n"
        ),
        from_email=None,
        recipient_list=[email],
    )
    log_activity(
        actor=actor,
        action=Action.USER_INVITED,
        enterprise=locked,
        target=email,
        new={"expires_at": invitation.expires_at.isoformat()},
    )
    return AddOutcome(email, invitation=invitation)


def open_invitation(token: str) -> Invitation | None:
    """The unexpired, unused invitation behind a link token, or None."""
    if not token:
        return None
    return (
        Invitation.objects.select_related("enterprise")
        .filter(token_digest=_digest(token), accepted_at__isnull=True)
        .filter(expires_at__gt=timezone.now())
        .first()
    )


@transaction.atomic
def accept_invitation(*, user: User, token: str) -> Enterprise:
    """The invited person, now registered, joins the enterprise through the link."""
    invitation = open_invitation(token)
    if invitation is None:
        raise Refused(
            "This invitation link is not valid or has expired. Ask the administrator for a new "
            "one.",
            code="invalid",
        )
    if invitation.email.lower() != user.email.lower():
        raise Refused(
            f"This invitation was sent to {invitation.email}, not to {user.email}.", code="invalid"
        )
    enterprise = _lock(invitation.enterprise)
    # Locked after the enterprise (same order everywhere) so a link is spent only once.
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise Refused("This invitation was already used.", code="state")
    _join(user, enterprise, User.objects.get(pk=user.pk), via="invitation")
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    return enterprise
