"""Provisioning by sales staff: create and edit enterprises, activate, suspend, reactivate.

Activation is where the pool's rules meet membership (enough users, an admin, enough
tokens, and the 200,000 minimum for every Paid user), so it lives beside the pool.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from accounts.models import Enterprise, User
from asksage_admin.core.audit import Action, log_activity
from asksage_admin.core.errors import Refused
from tokens.pool import MIN_PAID_INFERENCE, allocation_log, fmt, purchased_totals
from tokens.queries import assigned_totals

ACTIVATION_MIN_USERS = 4
ACTIVATION_INFERENCE_PER_USER = 500_000


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
    locked = Enterprise.objects.lock(enterprise)
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
    """Why this enterprise cannot be (re)activated now; empty when it can."""
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
    purchased = purchased_totals(enterprise)["inference"]
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
        log_activity(
            **allocation_log(
                actor, enterprise, user, "max_inference_tokens", old, MIN_PAID_INFERENCE
            )
        )
        granted += 1
    return granted


def _turn_active(
    actor: User, enterprise: Enterprise, *, from_status: str, action: str, verb: str
) -> Enterprise:
    # The refusal is logged and committed, then raised: an exception inside the atomic
    # block would roll the log row back with everything else.
    with transaction.atomic():
        locked = Enterprise.objects.lock(enterprise)
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
    """Pending -> active, if it has enough users, an admin and enough tokens."""
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
    locked = Enterprise.objects.lock(enterprise)
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
