"""Reads for token management: what each pool holds, what is assigned, what is left."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum

from accounts.models import Enterprise, User
from tokens.models import TokenPurchase


@dataclass(frozen=True)
class Pool:
    """One pool (inference or training) of one enterprise."""

    purchased: int
    assigned: int

    @property
    def unassigned(self) -> int:
        return self.purchased - self.assigned


@dataclass(frozen=True)
class PoolTotals:
    inference: Pool
    training: Pool

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            name: {"purchased": p.purchased, "assigned": p.assigned, "unassigned": p.unassigned}
            for name, p in (("inference", self.inference), ("training", self.training))
        }


def assigned_totals(enterprise: Enterprise) -> dict[str, int]:
    """Sums of the users' allocations (Banned users' allocations still count)."""
    sums = User.objects.in_enterprise(enterprise).aggregate(
        inference=Sum("max_inference_tokens", default=0),
        training=Sum("max_embedding_tokens", default=0),
    )
    return {"inference": int(sums["inference"]), "training": int(sums["training"])}


def pool_totals(enterprise: Enterprise) -> PoolTotals:
    """Purchased, assigned and unassigned for both pools, in two queries."""
    purchased = TokenPurchase.objects.filter(enterprise=enterprise).totals()
    assigned = assigned_totals(enterprise)
    return PoolTotals(
        inference=Pool(purchased["inference"], assigned["inference"]),
        training=Pool(purchased["training"], assigned["training"]),
    )
