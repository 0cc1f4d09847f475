"""Arrange helpers for token tests: plain functions, explicit arguments."""

from __future__ import annotations

import datetime as dt

from accounts.models import Enterprise, User
from asksage_admin.core.models import ActivityLog
from metrics.models import MonthlyUsage, UsageTotal
from tests import factories
from tokens.models import TokenPurchase

MIN = 200_000


def buy(enterprise: Enterprise, inference: int = 0, training: int = 0, ref: str = "PO-1"):
    """A purchase line written directly (the arrange step, not the behaviour under test)."""
    return TokenPurchase.objects.create(
        enterprise=enterprise, inference_tokens=inference, training_tokens=training, reference=ref
    )


def people(enterprise: Enterprise, n: int, *, inference: int = MIN, **extra) -> list[User]:
    return [
        factories.make_user(enterprise=enterprise, inference=inference, **extra) for _ in range(n)
    ]


def logs(action: str) -> list[ActivityLog]:
    return list(ActivityLog.objects.filter(action=action).order_by("id"))


def usage(user: User, month: dt.date, inference: int = 0, embedding: int = 0) -> MonthlyUsage:
    """A monthly roll-up row, and the lifetime total kept in step with it."""
    row = MonthlyUsage.objects.create(
        user=user,
        enterprise=user.enterprise,
        month=month,
        inference_tokens=inference,
        embedding_tokens=embedding,
    )
    total, _ = UsageTotal.objects.get_or_create(user=user, defaults={"enterprise": user.enterprise})
    total.inference_tokens += inference
    total.embedding_tokens += embedding
    total.save()
    return row


def reload(user: User) -> User:
    return User.objects.get(pk=user.pk)
