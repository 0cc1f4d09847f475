"""PostgreSQL races of usage requests: one decision wins, and an approval racing an inline save
of the same user's allocation never lets both through when the pool fits only one."""

from __future__ import annotations

import pytest

from accounts.models import User
from asksage_admin.core.errors import Refused
from tests.concurrency import run_together
from tests.tokens.helpers import MIN, buy, people
from tokens import usage_requests
from tokens.models import UsageRequest
from tokens.pool import AllocationChange, set_allocations
from tokens.queries import pool_totals

pytestmark = [pytest.mark.postgres]
ROUNDS = 8
RAISE = 200_000


def _ask(user: User) -> UsageRequest:
    return usage_requests.ask(user=user, pool_name="inference", amount=RAISE, reason="Busy month")


def test_concurrent_approve_and_decline_one_wins(transactional_db, enterprise, org_admin):
    (user,) = people(enterprise, 1)
    other_admin = people(enterprise, 1, role=User.Role.ADMIN)[0]
    buy(enterprise, 10 * MIN + ROUNDS * RAISE)
    for _ in range(ROUNDS):
        found = _ask(user)
        before = User.objects.get(pk=user.pk).max_inference_tokens

        results = run_together(
            [
                lambda: usage_requests.approve(
                    actor=org_admin, enterprise=enterprise, request_id=found.pk
                ),
                lambda: usage_requests.decline(
                    actor=other_admin, enterprise=enterprise, request_id=found.pk, note="No"
                ),
            ]
        )

        wins = [r for r in results if isinstance(r, UsageRequest)]
        losses = [r for r in results if isinstance(r, Refused)]
        assert len(wins) == 1 and len(losses) == 1, results
        assert losses[0].code == "state"
        found.refresh_from_db()
        assert found.status == wins[0].status
        after = User.objects.get(pk=user.pk).max_inference_tokens
        assert after == before + (RAISE if found.status == "approved" else 0)


def test_two_admins_approving_at_once_raise_the_allocation_once(
    transactional_db, enterprise, org_admin
):
    (user,) = people(enterprise, 1)
    second = people(enterprise, 1, role=User.Role.ADMIN)[0]
    buy(enterprise, 10 * MIN + ROUNDS * RAISE)
    for _ in range(ROUNDS):
        found = _ask(user)
        before = User.objects.get(pk=user.pk).max_inference_tokens

        results = run_together(
            [
                lambda actor=actor: usage_requests.approve(
                    actor=actor, enterprise=enterprise, request_id=found.pk
                )
                for actor in (org_admin, second)
            ]
        )

        assert sorted(type(r).__name__ for r in results) == ["Refused", "UsageRequest"], results
        assert User.objects.get(pk=user.pk).max_inference_tokens == before + RAISE


def test_approval_racing_an_inline_save_of_the_same_user(transactional_db, enterprise, org_admin):
    """Headroom for one raise: the approval and the editor's save cannot both succeed."""
    (user,) = people(enterprise, 1)
    buy(enterprise, MIN + RAISE + RAISE // 2)  # 300,000 free: one raise of 200,000 fits
    outcomes = set()
    for _ in range(ROUNDS):
        User.objects.filter(pk=user.pk).update(max_inference_tokens=MIN)
        UsageRequest.objects.filter(status="open").delete()
        found = _ask(user)

        results = run_together(
            [
                lambda: usage_requests.approve(
                    actor=org_admin, enterprise=enterprise, request_id=found.pk
                ),
                lambda: set_allocations(
                    actor=org_admin,
                    enterprise=enterprise,
                    changes=[AllocationChange(user.pk, "inference", MIN + RAISE, MIN)],
                ),
            ]
        )

        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1, results
        assert isinstance(errors[0], Refused), errors
        # The save that loses is stale (conflict) or over the pool; the approval over the pool.
        assert errors[0].code in {"conflict", "over_pool"}
        outcomes.add("approval" if isinstance(results[0], UsageRequest) else "inline save")
        assert User.objects.get(pk=user.pk).max_inference_tokens == MIN + RAISE
        pools = pool_totals(enterprise)
        assert pools.inference.assigned <= pools.inference.purchased
        found.refresh_from_db()
        assert found.status == ("approved" if isinstance(results[0], UsageRequest) else "open")
    print("winners seen:", sorted(outcomes))


def test_two_expire_runs_at_once_end_each_allocation_once(transactional_db, enterprise):
    import datetime as dt

    from django.utils import timezone

    from asksage_admin.core.models import ActivityLog
    from tokens.models import TemporaryAllocation
    from tokens.temporary import expire_due

    users = people(enterprise, 6)
    buy(enterprise, 6 * MIN)
    past = timezone.now() - dt.timedelta(minutes=5)
    TemporaryAllocation.objects.bulk_create(
        TemporaryAllocation(
            enterprise=enterprise, user=u, extra_inference=1000, until=past.date(), ends_at=past
        )
        for u in users
    )

    results = run_together([expire_due, expire_due, expire_due])

    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sum(r.ended for r in results) == len(users)
    ended = ActivityLog.objects.filter(action="temporary_allocation_ended")
    assert sorted(ended.values_list("target", flat=True)) == sorted(u.email for u in users)
