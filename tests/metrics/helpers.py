"""Factory helpers for the statistics tests: roll-up rows as ingestion would leave them.

The pages read only the roll-ups, so tests create them directly; metrics.services keeps them
equal to the ledger in real life (and reconcile_usage proves it).
"""

from __future__ import annotations

from datetime import date

from django.db.models import F

from accounts.models import Enterprise, User
from metrics.models import EnterpriseMonthlyUsage, MonthlyUsage, UsageTotal
from metrics.queries import add_months
from tokens.models import TokenPurchase


def add_usage(
    user: User, month: date, *, inference: int = 0, embedding: int = 0, model: str = ""
) -> None:
    """Add tokens to every roll-up of `user`'s enterprise for `month` (first day of month)."""
    enterprise = user.enterprise
    key = {"enterprise": enterprise}
    for model_cls, lookup in (
        (MonthlyUsage, {"user": user, "month": month, **key}),
        (UsageTotal, {"user": user, **key}),
        (EnterpriseMonthlyUsage, {"month": month, "model": model, **key}),
    ):
        model_cls.objects.get_or_create(**lookup)
        model_cls.objects.filter(**lookup).update(
            inference_tokens=F("inference_tokens") + inference,
            embedding_tokens=F("embedding_tokens") + embedding,
        )


def add_history(
    user: User, first: date, monthly: list[tuple[int, int]], *, model: str = ""
) -> None:
    """One add_usage per (inference, embedding) pair, for consecutive months from `first`."""
    for offset, (inference, embedding) in enumerate(monthly):
        add_usage(
            user, add_months(first, offset), inference=inference, embedding=embedding, model=model
        )


def make_purchase(enterprise: Enterprise, *, inference: int = 0, training: int = 0) -> None:
    TokenPurchase.objects.create(
        enterprise=enterprise,
        inference_tokens=inference,
        training_tokens=training,
        reference=f"PO-{TokenPurchase.objects.count() + 1}",
    )


def make_members(enterprise: Enterprise, n: int, *, prefix: str = "load") -> list[User]:
    """n members in one INSERT and without password hashing: for query-count tests."""
    users = [
        User(email=f"{prefix}{i}@{enterprise.slug}.test", enterprise=enterprise, password="!")
        for i in range(n)
    ]
    User.objects.bulk_create(users)
    return list(User.objects.filter(email__startswith=prefix, enterprise=enterprise))


def add_usage_rows(users: list[User], month: date, *, inference: int, embedding: int = 0) -> None:
    """One month of usage for many users in three bulk INSERTs (one model per user index)."""
    enterprise = users[0].enterprise
    MonthlyUsage.objects.bulk_create(
        MonthlyUsage(
            user=u,
            enterprise=enterprise,
            month=month,
            inference_tokens=inference,
            embedding_tokens=embedding,
        )
        for u in users
    )
    UsageTotal.objects.bulk_create(
        UsageTotal(
            user=u, enterprise=enterprise, inference_tokens=inference, embedding_tokens=embedding
        )
        for u in users
    )
    EnterpriseMonthlyUsage.objects.bulk_create(
        EnterpriseMonthlyUsage(
            enterprise=enterprise,
            month=month,
            model=f"model-{i}",
            inference_tokens=inference,
            embedding_tokens=embedding,
        )
        for i, _ in enumerate(users)
    )
