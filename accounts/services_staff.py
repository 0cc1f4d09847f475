"""What staff change about accounts in /staff/: one service each, with its activity row.

The console's writes live in tokens; these are the few account fields staff own (name,
active flag, staff powers, groups) and the reset of someone's MFA by removing a device.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.models import Device

from accounts.models import User
from asksage_admin.core.audit import Action, log_activity
from asksage_admin.core.errors import Refused

# What a staff member may change on an account; superusers only for the last three.
STAFF_FIELDS = ("full_name", "is_active")
SUPERUSER_FIELDS = ("is_staff", "is_superuser")


def _refuse_invalid(user: User, fields: Iterable[str]) -> None:
    exclude = [f.name for f in User._meta.fields if f.name not in set(fields)]
    try:
        user.clean_fields(exclude=exclude)
    except ValidationError as exc:
        rows = {name: " ".join(messages) for name, messages in exc.message_dict.items()}
        raise Refused(next(iter(rows.values())), rows=rows) from None


@transaction.atomic
def create_account(*, actor: User, email: str, full_name: str = "", password: str | None) -> User:
    """An account made by staff (no enterprise: joining one needs consent or provisioning)."""
    user = User(email=email.strip().lower(), full_name=full_name)
    _refuse_invalid(user, ["email", "full_name"])
    if User.objects.filter(email__iexact=user.email).exists():
        raise Refused("A user with this email address already exists.", rows={"email": ""})
    user.set_password(password)  # None leaves the password unusable
    user.save()
    new = {"email": user.email, "full_name": user.full_name}
    log_activity(actor=actor, action=Action.ACCOUNT_CREATED, target=user.email, new=new)
    return user


@transaction.atomic
def update_account(
    *,
    actor: User,
    user: User,
    changes: dict[str, Any],
    groups: Iterable[Group] | None = None,
) -> User:
    """Apply a staff edit and log every field that changed, old and new.

    Only a superuser hands out staff powers or groups; staff and superuser accounts never
    belong to an enterprise.
    """
    allowed = STAFF_FIELDS + (SUPERUSER_FIELDS if actor.is_superuser else ())
    refused = sorted(set(changes) - set(allowed))
    if refused or (groups is not None and not actor.is_superuser):
        raise Refused("Only a superuser can change staff access.", code="state")
    # The row lock: two staff editing the same account must not log the same "old" twice.
    locked = User.objects.select_for_update().get(pk=user.pk)
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for name, value in changes.items():
        if getattr(locked, name) != value:
            old[name], new[name] = getattr(locked, name), value
            setattr(locked, name, value)
    _refuse_invalid(locked, new)
    if (locked.is_staff or locked.is_superuser) and locked.enterprise_id is not None:
        raise Refused(
            f"{locked.email} belongs to an enterprise: staff and superuser accounts never do.",
            code="state",
            rows={"is_staff": ""},
        )
    if new:
        locked.save(update_fields=list(new))
    if groups is not None:
        before = sorted(locked.groups.values_list("name", flat=True))
        after = sorted(group.name for group in groups)
        if before != after:
            locked.groups.set(list(groups))
            old["groups"], new["groups"] = before, after
    if new:
        log_activity(
            actor=actor,
            action=Action.ACCOUNT_UPDATED,
            enterprise=locked.enterprise,
            target=locked.email,
            old=old,
            new=new,
        )
    return locked


def record_password_set(*, actor: User, user: User) -> None:
    """Staff set someone's password in /staff/ (Django's own form does the setting)."""
    log_activity(
        actor=actor,
        action=Action.PASSWORD_RESET,
        enterprise=user.enterprise,
        target=user.email,
        new={"by": "staff"},
    )


@transaction.atomic
def remove_mfa_device(*, actor: User, device: Device) -> None:
    """Reset someone's MFA: the device goes; they enrol again at their next sign-in."""
    owner = device.user
    log_activity(
        actor=actor,
        action=Action.MFA_DEVICE_REMOVED,
        enterprise=owner.enterprise,
        target=owner.email,
        old={"device": device.name, "type": type(device).__name__, "id": device.pk},
    )
    device.delete()
