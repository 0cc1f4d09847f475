"""Row-lock proof on PostgreSQL: concurrent saves can never assign more than was purchased.

Each round, several admins' requests raise *different* users at the same instant; any one
fits in the pool, any two together do not. Without the enterprise row lock, READ COMMITTED
would let several of them read the same "assigned" total and all succeed.
"""

from __future__ import annotations

import json

import pytest

from accounts.models import User
from asksage_admin.core.errors import Refused
from tests import factories
from tests.concurrency import run_together
from tests.tokens.helpers import MIN, buy, people
from tokens.pool import AllocationChange, record_purchase, set_allocations
from tokens.queries import pool_totals

pytestmark = [pytest.mark.postgres]
THREADS = 8
ROUNDS = 25
URL = "/org/users/allocations/"
HEADROOM = 300_000  # unassigned at the start of each round
RAISE = 200_000  # one raise fits in HEADROOM, two do not


def _raise_request(client, user: User):
    def job():
        body = {
            "column": "inference",
            "changes": [{"id": user.pk, "value": MIN + RAISE, "original": MIN}],
        }
        response = client.post(
            "/org/users/allocations/", json.dumps(body), content_type="application/json"
        )
        return response.status_code, response.json()

    return job


def test_concurrent_raises_never_exceed_the_pool(transactional_db, enterprise, org_admin):
    users = people(enterprise, THREADS)
    buy(enterprise, THREADS * MIN + HEADROOM)
    # One client per thread (a test Client is not thread-safe), all signed in as the admin.
    clients = [factories.verified_client(org_admin) for _ in users]
    for _ in range(ROUNDS):
        User.objects.filter(pk__in=[u.pk for u in users]).update(max_inference_tokens=MIN)
        results = run_together([_raise_request(c, u) for c, u in zip(clients, users, strict=True)])

        assert not [r for r in results if isinstance(r, Exception)], results
        statuses = sorted(status for status, _ in results)
        assert statuses == [200] + [422] * (THREADS - 1)
        for status, body in results:
            if status == 422:
                error = body["error"]
                assert error["code"] == "over_pool"
                assert "more than the" in error["message"]
                assert "Nothing was saved" in error["message"]
        totals = pool_totals(enterprise)
        assert totals.inference.assigned == THREADS * MIN + RAISE
        assert totals.inference.assigned <= totals.inference.purchased


def test_correction_racing_allocations_keeps_purchased_above_assigned(
    transactional_db, enterprise, org_admin, staff_user
):
    users = people(enterprise, 4)
    buy(enterprise, 4 * MIN + HEADROOM)
    for round_ in range(ROUNDS):
        User.objects.filter(pk__in=[u.pk for u in users]).update(max_inference_tokens=MIN)
        purchased = pool_totals(enterprise).inference.purchased

        def correct(ref=f"CN-{round_}", purchased=purchased):
            # Takes the whole headroom back, leaving purchased == assigned as loaded.
            return record_purchase(
                actor=staff_user,
                enterprise=enterprise,
                inference_tokens=-(purchased - 4 * MIN),
                training_tokens=0,
                reference=ref,
            )

        def raise_one(user=users[round_ % 4]):
            return set_allocations(
                actor=org_admin,
                enterprise=enterprise,
                changes=[AllocationChange(user.pk, "inference", MIN + RAISE, MIN)],
            )

        results = run_together([correct, raise_one])
        unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, Refused)]
        assert not unexpected, unexpected
        assert sum(isinstance(r, Refused) for r in results) == 1  # exactly one of them won
        totals = pool_totals(enterprise)
        assert totals.inference.assigned <= totals.inference.purchased
        if totals.inference.purchased == 4 * MIN:  # the correction won: put the headroom back
            buy(enterprise, HEADROOM, ref=f"PO-{round_}")
