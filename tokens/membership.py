"""Membership: who belongs to an enterprise, in which role, Paid or Banned.

Joining needs consent: the console only invites (the person accepts by link); sales staff
attach registered people directly from /staff/. Staff and superuser accounts never join
an enterprise. A join is a conditional UPDATE (`enterprise IS NULL`), so two enterprises
adding the same person at once cannot both win. Every write takes the enterprise lock,
like the pool, and writes its own activity-log rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import cast

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Case, Q, Value, When
from django.db.models.functions import Lower

from accounts.models import Enterprise, User
from asksage_admin.core.audit import Action, log_activities, log_activity
from asksage_admin.core.errors import Refused
from tokens.pool import MIN_PAID_INFERENCE, allocation_log, refuse_short_pool


def split_emails(text: str) -> list[str]:
    """Emails pasted in any shape (lines, commas, "Name <a@b>"), lower-cased, in order, once."""
    seen: dict[str, None] = {}
    for chunk in re.split(r"[\s,;]+", text or ""):
        email = chunk.strip().strip("<>\"'()").lower()
        if email:
            seen.setdefault(email, None)
    return list(seen)


def join(
    actor: User, enterprise: Enterprise, user: User, *, role: str, action: str, via: str
) -> User:
    """`user` joins the locked `enterprise` as Paid, if they still belong nowhere.

    The UPDATE only matches a row that belongs to no enterprise and is not staff: the
    database decides a race between two enterprises, and the loser gets a clear refusal.
    """
    if user.enterprise_id == enterprise.pk:
        raise Refused(f"{user.email} is already a user of {enterprise.name}.", code="state")
    grant = MIN_PAID_INFERENCE if enterprise.is_active else 0
    if grant:
        refuse_short_pool(enterprise, grant, "A new user")
    joined = User.objects.filter(
        pk=user.pk, enterprise__isnull=True, is_staff=False, is_superuser=False
    ).update(
        enterprise=enterprise,
        role=role,
        status=User.Status.PAID,
        max_inference_tokens=grant,
        max_embedding_tokens=0,
    )
    if not joined:
        raise Refused(
            f"{user.email} cannot join {enterprise.name}: the account belongs to another "
            "organization or is a staff account.",
            code="state",
        )
    old = {"enterprise": None, "role": user.role, "status": user.status}
    user.refresh_from_db()
    log_activity(
        actor=actor,
        action=action,
        enterprise=enterprise,
        target=user.email,
        old=old,
        new={
            "enterprise": enterprise.name,
            "role": role,
            "status": user.status,
            "max_inference_tokens": grant,
            "via": via,
        },
    )
    return user


# --- Attaching registered users (sales staff) ----------------------------------------------


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
        elif user.is_staff or user.is_superuser:
            rows[email] = "is a staff account; staff never belong to an enterprise."
        elif user.enterprise_id not in (None, enterprise.pk):
            rows[email] = "already belongs to another enterprise."
    if rows:
        listing = "; ".join(f"{email} {reason}" for email, reason in rows.items())
        raise Refused(f"Nothing was attached: {listing}", rows=rows)
    joining = [found[email] for email in emails if found[email].enterprise_id is None]
    if joining and enterprise.pk and enterprise.is_active:
        # In an active enterprise every Paid user holds the minimum from the first moment.
        refuse_short_pool(
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
    locked = Enterprise.objects.lock(enterprise)
    users = [u for u in check_attachable(locked, emails) if u.enterprise_id is None]
    return [
        join(actor, locked, user, role=role, action=Action.USER_ATTACHED, via="staff")
        for user in users
    ]


def _roles_after(
    enterprise: Enterprise, admins: Iterable[int], auditors: Iterable[int]
) -> dict[int, tuple[User, str]]:
    """The role of every user whose role may change: the named ones and today's admins and
    auditors. Everyone else is a member and stays one, so a large enterprise is not loaded."""
    admins, auditors = set(admins), set(auditors)
    both = admins & auditors
    users = (
        User.objects.in_enterprise(enterprise)
        .filter(Q(pk__in=admins | auditors) | Q(role__in=[User.Role.ADMIN, User.Role.AUDITOR]))
        .in_bulk()
    )
    if both:
        emails = ", ".join(users[pk].email for pk in both if pk in users)
        raise Refused(f"A user is either admin or auditor, not both: {emails}.")
    unknown = (admins | auditors) - set(users)
    if unknown:
        raise Refused("Only users of this enterprise can be its admins or auditors.")
    after: dict[int, tuple[User, str]] = {}
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
    locked = Enterprise.objects.lock(enterprise)
    check_roles(locked, admins=admins, auditors=auditors)
    changed = []
    for user, role in _roles_after(locked, admins, auditors).values():
        if user.role != role:
            _apply_role(actor, locked, user, role)
            changed.append(user)
    return changed


def _member_ids(enterprise: Enterprise, emails: Sequence[str], field: str) -> list[int]:
    """Ids of the enterprise's users named by `emails`; Refused naming any that are not."""
    found = dict(
        User.objects.in_enterprise(enterprise)
        .annotate(address=Lower("email"))
        .filter(address__in=[e.lower() for e in emails])
        .values_list("address", "pk")
    )
    unknown = [e for e in emails if e.lower() not in found]
    if unknown:
        message = (
            f"Not users of {enterprise.name}: {', '.join(unknown)}. "
            "Attach them first, then choose their role."
        )
        raise Refused(message, rows={field: message})
    return [found[e.lower()] for e in emails]


@transaction.atomic
def set_roles_by_email(
    *, actor: User, enterprise: Enterprise, admins: Sequence[str], auditors: Sequence[str]
) -> list[User]:
    """set_roles with the admins and auditors named by email (the staff page's textareas)."""
    locked = Enterprise.objects.lock(enterprise)
    return set_roles(
        actor=actor,
        enterprise=locked,
        admins=_member_ids(locked, admins, "admins"),
        auditors=_member_ids(locked, auditors, "auditors"),
    )


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


# --- Console user management ------------------------------------------------------------


def _locked_member(user: User) -> tuple[Enterprise, User]:
    if user.enterprise_id is None:
        raise Refused(f"{user.email} is not part of an organization.", code="state")
    enterprise = Enterprise.objects.lock(cast(Enterprise, user.enterprise))  # id checked above
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
def change_roles(*, actor: User, enterprise: Enterprise, roles: dict[int, str]) -> list[User]:
    """change_role for many users at once (a bulk import): one UPDATE and one log INSERT
    whatever the count, and the last-admin rule checked on the outcome as a whole."""
    if any(role not in User.Role.values for role in roles.values()):
        raise Refused("Choose member, admin or auditor.")
    locked = Enterprise.objects.lock(enterprise)
    users = User.objects.in_enterprise(locked).in_bulk(list(roles))
    if set(roles) - set(users):
        raise Refused("Only users of this organization can change role.", code="not_found")
    changing = {pk: role for pk, role in roles.items() if users[pk].role != role}
    if not changing:
        return []
    admins = set(User.objects.in_enterprise(locked).admins().paid().values_list("pk", flat=True))
    promoted = {
        pk for pk, r in changing.items() if r == User.Role.ADMIN and not users[pk].is_banned
    }
    if locked.is_active and not (admins - set(changing)) | promoted:
        raise Refused(
            f"{locked.name} is active and must keep at least one admin who is not disabled.",
            code="last_admin",
        )
    whens = (When(pk=pk, then=Value(role)) for pk, role in changing.items())
    User.objects.filter(pk__in=list(changing)).update(role=Case(*whens))
    log_activities(
        [
            {
                "actor": actor,
                "action": Action.ROLE_CHANGED,
                "enterprise": locked,
                "target": users[pk].email,
                "old": {"role": users[pk].role},
                "new": {"role": role},
            }
            for pk, role in changing.items()
        ]
    )
    return [users[pk] for pk in changing]


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
        refuse_short_pool(enterprise, MIN_PAID_INFERENCE - old_tokens, f"Activating {user.email}")
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
        log_activity(
            **allocation_log(
                actor,
                enterprise,
                user,
                "max_inference_tokens",
                old_tokens,
                user.max_inference_tokens,
            )
        )
    return user
