"""A state machine over the services: whatever sequence of operations (valid, random or
hostile) runs, the pool is never over-assigned, Paid users of the active enterprise hold
the minimum, roll-ups equal the ledger, a refused operation changes nothing, the activity
log's chain verifies, and (on PostgreSQL) the database guards agree with the services."""

from __future__ import annotations

import io
import itertools

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from accounts.models import Enterprise, User
from asksage_admin.core.errors import Refused
from asksage_admin.core.models import ActivityLog
from metrics.ingest import record_usage_batch
from metrics.keys import create_integration_key
from metrics.models import UsageEvent
from tests import factories
from tokens import membership, pool, provisioning
from tokens.models import TokenPurchase
from tokens.pool import MIN_PAID_INFERENCE as MIN
from tokens.pool import AllocationChange
from tokens.queries import pool_totals

pytestmark = [pytest.mark.guarded, pytest.mark.django_db]
_people = itertools.count()

hostile = st.one_of(
    st.integers(0, 3_000_000),
    st.sampled_from([MIN - 1, MIN, 0, -1, 10**15, 10**19, 2**63]),
)


class Services(RuleBasedStateMachine):
    users = Bundle("users")

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    @initialize(target=users)
    def active_enterprise(self):
        """Pending with four users at 0, 3,000,000 bought, then activated (grants minimums)."""
        self.staff = factories.make_user(
            f"staff{next(_people)}@asksage.test", is_staff=True, is_superuser=True
        )
        self.enterprise = provisioning.create_enterprise(
            actor=self.staff, name="Hypo", slug=f"hypo-{next(_people)}"
        )
        pool.record_purchase(
            actor=self.staff,
            enterprise=self.enterprise,
            inference_tokens=3_000_000,
            training_tokens=400_000,
            reference="PO-H",
        )
        people = [
            factories.make_user(
                f"p{next(_people)}@hypo.test",
                enterprise=self.enterprise,
                role="admin" if n == 0 else "member",
            )
            for n in range(4)
        ]
        provisioning.activate_enterprise(actor=self.staff, enterprise=self.enterprise)
        self.admin = people[0]
        self.key, _ = create_integration_key(actor=None, name=f"hyp-{next(_people)}")
        return multiple_of(people)

    # --- helpers ------------------------------------------------------------------------

    def _snapshot(self):
        users = list(
            User.objects.filter(enterprise=self.enterprise)
            .order_by("pk")
            .values_list("pk", "status", "role", "max_inference_tokens", "max_embedding_tokens")
        )
        return (
            users,
            TokenPurchase.objects.filter(enterprise=self.enterprise).totals(),
            UsageEvent.objects.count(),
            ActivityLog.objects.count(),
        )

    def _attempt(self, operation) -> None:
        """Run `operation`; if it is refused, nothing at all may have changed."""
        before = self._snapshot()
        try:
            operation()
        except Refused:
            assert self._snapshot() == before

    # --- rules --------------------------------------------------------------------------

    @rule(target=users)
    def add_user(self):
        person = factories.make_user(f"n{next(_people)}@hypo.test")
        self._attempt(
            lambda: membership.attach_users(
                actor=self.staff, enterprise=self.enterprise, emails=[person.email]
            )
        )
        return person

    @rule(user=users)
    def disable(self, user):
        self._attempt(lambda: membership.disable_user(actor=self.admin, user=user))

    @rule(user=users)
    def activate(self, user):
        self._attempt(lambda: membership.activate_user(actor=self.admin, user=user))

    @rule(
        picks=st.lists(
            st.tuples(st.integers(0, 50), st.sampled_from(["inference", "embedding"]), hostile),
            min_size=1,
            max_size=4,
        ),
        stale=st.booleans(),
    )
    def set_allocations(self, picks, stale):
        members = list(User.objects.filter(enterprise=self.enterprise).order_by("pk"))
        changes = []
        for index, column, value in picks:
            user = members[index % len(members)]
            current = getattr(user, pool.COLUMNS[column][0])
            changes.append(
                AllocationChange(user.pk, column, value, current + 1 if stale else current)
            )
        self._attempt(
            lambda: pool.set_allocations(
                actor=self.admin, enterprise=self.enterprise, changes=changes
            )
        )

    @rule(
        inference=st.integers(-4_000_000, 4_000_000),
        training=st.integers(-600_000, 600_000),
    )
    def record_purchase(self, inference, training):
        self._attempt(
            lambda: pool.record_purchase(
                actor=self.staff,
                enterprise=self.enterprise,
                inference_tokens=inference,
                training_tokens=training,
                reference="PO-X",
            )
        )

    @rule(
        user=users,
        ids=st.lists(st.integers(0, 5), min_size=1, max_size=4),
        tokens=st.integers(-1, 10**6),
    )
    def ingest(self, user, ids, tokens):
        events = [
            {
                "id": f"e{n}",
                "user": user.email,
                "kind": "inference",
                "tokens": tokens,
                "occurred_at": "2026-11-15T12:00:00Z",
                "model": "m",
            }
            for n in ids
        ]
        record_usage_batch(integration=self.key, events=events)

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def pools_never_over_assigned(self):
        if not hasattr(self, "enterprise"):
            return
        totals = pool_totals(self.enterprise)
        assert totals.inference.assigned <= totals.inference.purchased
        assert totals.training.assigned <= totals.training.purchased

    @invariant()
    def paid_users_hold_the_minimum(self):
        if not hasattr(self, "enterprise"):
            return
        assert Enterprise.objects.get(pk=self.enterprise.pk).is_active
        low = User.objects.filter(
            enterprise=self.enterprise, status="paid", max_inference_tokens__lt=MIN
        )
        assert not low.exists()

    @invariant()
    def rollups_equal_the_ledger_and_the_chain_verifies(self):
        out = io.StringIO()
        call_command("reconcile_usage", stdout=out)
        call_command("verify_activity_log", by="state machine", stdout=out)

    @invariant()
    def the_database_guards_agree(self):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def multiple_of(people):
    from hypothesis.stateful import multiple

    return multiple(*people)


def test_services_keep_every_invariant(db):
    Services.TestCase.settings = settings(
        max_examples=12,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    Services.TestCase().runTest()
