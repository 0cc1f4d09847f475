"""tokens.pool.set_allocations: every rule broken on purpose is refused, nothing changes.

Text such as "abc" never reaches the service: forms and the JSON endpoint parse it
(tests/tokens/test_allocations_api.py, test_token_parsing.py)."""

from __future__ import annotations

import pytest

from accounts.models import User
from asksage_admin.core.errors import Refused
from tests import factories
from tests.tokens.helpers import MIN, buy, logs, people, reload
from tokens.pool import AllocationChange, set_allocations

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool(enterprise):
    """1,000,000 inference and 500,000 training purchased; two users hold 200,000 each."""
    buy(enterprise, 1_000_000, 500_000)
    return enterprise


@pytest.fixture
def ann(pool) -> User:
    return factories.make_user("ann@acme.test", enterprise=pool, inference=MIN)


@pytest.fixture
def bob(pool) -> User:
    return factories.make_user("bob@acme.test", enterprise=pool, inference=MIN)


def _save(actor, enterprise, *changes):
    return set_allocations(actor=actor, enterprise=enterprise, changes=list(changes))


def _refused(actor, enterprise, *changes) -> Refused:
    with pytest.raises(Refused) as info:
        _save(actor, enterprise, *changes)
    return info.value


def test_raise_within_pool_is_saved_and_logged(org_admin, pool, ann):
    applied = _save(org_admin, pool, AllocationChange(ann.pk, "inference", 350_000, MIN))
    assert reload(ann).max_inference_tokens == 350_000
    assert [(a.old, a.new) for a in applied] == [(MIN, 350_000)]
    (log,) = logs("allocation_changed")
    assert (log.actor, log.enterprise, log.target) == (org_admin, pool, "ann@acme.test")
    assert (log.old_value, log.new_value) == (
        {"max_inference_tokens": MIN},
        {"max_inference_tokens": 350_000},
    )


def test_embedding_column_is_saved_against_training_pool(org_admin, pool, ann):
    _save(org_admin, pool, AllocationChange(ann.pk, "embedding", 500_000, 0))
    assert reload(ann).max_embedding_tokens == 500_000
    assert logs("allocation_changed")[0].new_value == {"max_embedding_tokens": 500_000}


def test_below_minimum_for_paid_user_is_refused(org_admin, pool, ann):
    error = _refused(org_admin, pool, AllocationChange(ann.pk, "inference", 199_999, MIN))
    assert error.code == "minimum"
    assert "at least 200,000" in error.rows[ann.pk]
    assert reload(ann).max_inference_tokens == MIN
    assert logs("allocation_changed") == []


def test_banned_user_can_be_lowered_to_zero(org_admin, pool):
    banned = factories.make_user(enterprise=pool, status=User.Status.BANNED, inference=MIN)
    _save(org_admin, pool, AllocationChange(banned.pk, "inference", 0, MIN))
    assert reload(banned).max_inference_tokens == 0


def test_negative_value_is_refused(org_admin, pool, ann):
    error = _refused(org_admin, pool, AllocationChange(ann.pk, "embedding", -5, 0))
    assert error.code == "invalid"
    assert "negative" in error.rows[ann.pk]
    assert reload(ann).max_embedding_tokens == 0


def test_huge_value_is_refused_as_a_typo(org_admin, pool, ann):
    error = _refused(org_admin, pool, AllocationChange(ann.pk, "inference", 10**16, MIN))
    assert "check the number" in error.rows[ann.pk]


def test_above_pool_is_refused_naming_the_raised_rows(org_admin, pool, ann, bob):
    # 600,000 unassigned: each raise alone fits, both together do not.
    error = _refused(
        org_admin,
        pool,
        AllocationChange(ann.pk, "inference", 600_000, MIN),
        AllocationChange(bob.pk, "inference", 600_000, MIN),
    )
    assert error.code == "over_pool"
    assert "200,000 more than the 1,000,000 purchased" in error.message
    assert set(error.rows) == {ann.pk, bob.pk}
    assert [reload(ann).max_inference_tokens, reload(bob).max_inference_tokens] == [MIN, MIN]


def test_training_pool_is_guarded_too(org_admin, pool, ann):
    error = _refused(org_admin, pool, AllocationChange(ann.pk, "embedding", 500_001, 0))
    assert error.code == "over_pool"
    assert reload(ann).max_embedding_tokens == 0


def test_lowering_one_row_makes_room_for_another_in_the_same_save(org_admin, pool, ann, bob):
    big = factories.make_user(enterprise=pool, inference=600_000)
    _save(
        org_admin,
        pool,
        AllocationChange(big.pk, "inference", MIN, 600_000),
        AllocationChange(ann.pk, "inference", 600_000, MIN),
    )
    assert reload(ann).max_inference_tokens == 600_000


def test_one_bad_row_saves_nothing(org_admin, pool, ann, bob):
    _refused(
        org_admin,
        pool,
        AllocationChange(ann.pk, "inference", 300_000, MIN),
        AllocationChange(bob.pk, "inference", -1, MIN),
    )
    assert reload(ann).max_inference_tokens == MIN
    assert logs("allocation_changed") == []


def test_stale_value_is_a_conflict_naming_the_rows(org_admin, pool, ann, bob):
    User.objects.filter(pk=bob.pk).update(max_inference_tokens=250_000)  # someone else's save
    error = _refused(
        org_admin,
        pool,
        AllocationChange(ann.pk, "inference", 300_000, MIN),
        AllocationChange(bob.pk, "inference", 300_000, MIN),
    )
    assert error.code == "conflict"
    assert "bob@acme.test" in error.message and "ann@acme.test" not in error.message
    assert "250,000" in error.rows[bob.pk]
    assert reload(ann).max_inference_tokens == MIN
    assert reload(bob).max_inference_tokens == 250_000


def test_other_enterprise_user_is_not_found(org_admin, pool, other_admin):
    error = _refused(org_admin, pool, AllocationChange(other_admin.pk, "inference", 300_000, 0))
    assert error.code == "not_found"
    assert reload(other_admin).max_inference_tokens == 0


def test_same_row_twice_is_refused(org_admin, pool, ann):
    error = _refused(
        org_admin,
        pool,
        AllocationChange(ann.pk, "inference", 300_000, MIN),
        AllocationChange(ann.pk, "inference", 400_000, MIN),
    )
    assert "twice" in error.rows[ann.pk]


def test_unknown_column_is_refused(org_admin, pool, ann):
    error = _refused(org_admin, pool, AllocationChange(ann.pk, "is_staff", 1, 0))
    assert "Only Max Inference Tokens and Max Embedding Tokens" in error.message


def test_unchanged_value_writes_no_log(org_admin, pool, ann):
    assert _save(org_admin, pool, AllocationChange(ann.pk, "inference", MIN, MIN)) == []
    assert logs("allocation_changed") == []


def test_empty_save_is_refused(org_admin, pool):
    assert "no changes" in _refused(org_admin, pool).message


def test_assigned_already_over_may_still_go_down(org_admin, enterprise):
    # Legacy data over the pool must not block the edit that fixes it.
    buy(enterprise, 300_000)
    a, b = people(enterprise, 2)
    _save(org_admin, enterprise, AllocationChange(a.pk, "embedding", 0, 0))
    User.objects.filter(pk=b.pk).update(status=User.Status.BANNED)
    _save(org_admin, enterprise, AllocationChange(b.pk, "inference", 0, MIN))
    assert reload(b).max_inference_tokens == 0


def test_over_pool_refusal_names_the_sales_contact(org_admin_client, enterprise):
    buy(enterprise, 150_000)
    factories.make_user("new@elsewhere.test")
    response = org_admin_client.post("/org/users/add/", {"email": "new@elsewhere.test"})
    assert "contact us at sales@asksage.ai" in response.content.decode()
