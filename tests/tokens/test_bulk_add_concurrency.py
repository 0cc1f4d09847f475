"""A bulk import and an allocation save at the same instant: the pool still holds.

Both take the enterprise lock; the import plans again under it, so whichever comes second
sees the first one's change. Each side fits in the pool alone, the two together do not.
"""

from __future__ import annotations

import pytest

from accounts.models import User
from asksage_admin.core.errors import Refused
from tests.concurrency import run_together
from tests.tokens.helpers import MIN, buy, people
from tokens import bulk
from tokens.pool import AllocationChange, set_allocations
from tokens.queries import pool_totals

pytestmark = [pytest.mark.postgres]
ROUNDS = 10


def test_import_racing_an_allocation_save_never_exceeds_the_pool(
    transactional_db, enterprise, org_admin
):
    ann, bob = people(enterprise, 2)
    User.objects.filter(pk=org_admin.pk).update(max_inference_tokens=MIN)
    buy(enterprise, 3 * MIN + 300_000)  # room for one raise of 200,000, not two
    text = f"email,max_inference\n{ann.email},{MIN + 200_000}\n"
    import_lost = []
    for _ in range(ROUNDS):
        User.objects.filter(pk__in=[ann.pk, bob.pk]).update(max_inference_tokens=MIN)
        snapshot = bulk.plan(enterprise, bulk.parse_csv(text)).snapshot  # the preview

        def do_import(snapshot=snapshot):
            return bulk.import_rows(
                actor=org_admin,
                enterprise=enterprise,
                text=text,
                snapshot=snapshot,
                link_for=lambda token: f"/invitations/{token}/",
            )

        def do_save():
            change = AllocationChange(bob.pk, "inference", MIN + 200_000, MIN)
            return set_allocations(actor=org_admin, enterprise=enterprise, changes=[change])

        results = run_together([do_import, do_save])
        failed = [r for r in results if isinstance(r, BaseException)]
        assert len(failed) == 1 and isinstance(failed[0], Refused), results
        assert failed[0].code == "over_pool"
        totals = pool_totals(enterprise)
        assert totals.inference.assigned == 3 * MIN + 200_000 <= totals.inference.purchased
        import_lost.append(isinstance(results[0], BaseException))
    print(f"the import lost {sum(import_lost)} of {ROUNDS} races")
