"""Reads for token management: what each pool holds, what is assigned, what is left."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connections, router
from django.utils import timezone

from accounts.models import Enterprise, User
from tokens.models import ACTIVE_SQL, TokenPurchase


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


def assigned_totals(enterprise: Enterprise, now: dt.datetime | None = None) -> dict[str, int]:
    """Sums of the users' allocations (Banned users' allocations still count).

    Inference includes the temporary allocations still counting at `now`: they reserve pool
    capacity until they end (TemporaryAllocation). One query.
    """
    active = ACTIVE_SQL.format(now="%s")
    sql = f"""
SELECT coalesce(sum(u.max_inference_tokens), 0), coalesce(sum(u.max_embedding_tokens), 0),
       (SELECT coalesce(sum(x.extra_inference), 0) FROM tokens_temporaryallocation x
        JOIN accounts_user v ON v.id = x.user_id AND v.enterprise_id = x.enterprise_id
        WHERE x.enterprise_id = %s AND {active})
FROM accounts_user u WHERE u.enterprise_id = %s
"""  # noqa: S608 (our names only; values are parameters)
    # Through the router, like the ORM: the replica on report pages, the primary in a write.
    with connections[router.db_for_read(User)].cursor() as cursor:
        cursor.execute(sql, [enterprise.pk, now or timezone.now(), enterprise.pk])
        base, training, extra = cursor.fetchone()
    return {"inference": int(base) + int(extra), "training": int(training)}


def pool_totals(enterprise: Enterprise) -> PoolTotals:
    """Purchased, assigned and unassigned for both pools, in two queries."""
    purchased = TokenPurchase.objects.filter(enterprise=enterprise).totals()
    assigned = assigned_totals(enterprise)
    return PoolTotals(
        inference=Pool(purchased["inference"], assigned["inference"]),
        training=Pool(purchased["training"], assigned["training"]),
    )
