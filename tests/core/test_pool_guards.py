"""PostgreSQL has the last word on the pool: raw SQL that breaks a rule is refused.

Each test arranges a valid enterprise, breaks one rule through connection.cursor() (as a
bug or a console session would) and asks PostgreSQL to check now (SET CONSTRAINTS ALL
IMMEDIATE: what COMMIT does). The exact rule is the services' own (tokens.pool,
tokens.membership, tokens.provisioning): Paid users of ACTIVE enterprises hold at least
200,000; pending or suspended enterprises and Banned users may hold less.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from accounts.models import Enterprise, User
from tests import factories
from tests.tokens.helpers import MIN, buy

pytestmark = [pytest.mark.postgres, pytest.mark.guarded, pytest.mark.django_db]


def _sql(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _commit_check() -> None:
    _sql("SET CONSTRAINTS ALL IMMEDIATE")
    _sql("SET CONSTRAINTS ALL DEFERRED")  # back to how a transaction starts


def _refused(match: str, *statements: tuple[str, list]) -> None:
    """The statements, then the commit-time check, are refused as a whole."""
    _commit_check()  # the arrange step's own rows are checked (and pass) first
    with pytest.raises(IntegrityError, match=match), transaction.atomic():
        for sql, params in statements:
            _sql(sql, params)
        _commit_check()


def _allowed(*statements: tuple[str, list]) -> None:
    _commit_check()
    with transaction.atomic():
        for sql, params in statements:
            _sql(sql, params)
        _commit_check()


@pytest.fixture
def acme(db) -> Enterprise:
    """Active; 1,000,000 inference and 300,000 training bought; ann and bob hold the minimum."""
    enterprise = factories.make_enterprise("Acme Corp")
    buy(enterprise, 1_000_000, 300_000)
    return enterprise


@pytest.fixture
def ann(acme) -> User:
    return factories.make_user("ann@acme.test", enterprise=acme, inference=MIN, role="admin")


@pytest.fixture
def bob(acme) -> User:
    return factories.make_user("bob@acme.test", enterprise=acme, inference=MIN)


def _set(user: User, column: str, value: int) -> tuple[str, list]:
    return (f"UPDATE accounts_user SET {column} = %s WHERE id = %s", [value, user.pk])


def test_arranged_state_is_valid(ann, bob):
    _commit_check()


def test_raw_sql_over_assigning_inference_is_refused(ann, bob):
    _refused(
        "Max Inference Tokens: these changes would assign 1,100,000 tokens, 100,000 more than "
        "the 1,000,000 purchased",
        _set(ann, "max_inference_tokens", 900_000),
    )
    ann.refresh_from_db()
    assert ann.max_inference_tokens == MIN


def test_raw_sql_over_assigning_embedding_is_refused(ann, bob):
    _refused("Max Embedding Tokens: .* 300,001 tokens", _set(bob, "max_embedding_tokens", 300_001))


def test_raw_sql_lowering_a_paid_user_below_the_minimum_is_refused(ann, bob):
    _refused(
        "bob@acme.test is a Paid user and needs at least 200,000",
        _set(bob, "max_inference_tokens", 199_999),
    )


def test_a_banned_user_may_hold_zero(ann, bob):
    _allowed(
        ("UPDATE accounts_user SET status = 'banned' WHERE id = %s", [bob.pk]),
        _set(bob, "max_inference_tokens", 0),
    )


def test_unbanning_a_user_below_the_minimum_is_refused(ann, bob):
    _allowed(
        ("UPDATE accounts_user SET status = 'banned' WHERE id = %s", [bob.pk]),
        _set(bob, "max_inference_tokens", 0),
    )
    _refused(
        "needs at least 200,000",
        ("UPDATE accounts_user SET status = 'paid' WHERE id = %s", [bob.pk]),
    )


@pytest.mark.parametrize("status", ["pending", "suspended"])
def test_paid_users_of_an_enterprise_that_is_not_active_may_hold_zero(db, status):
    enterprise = factories.make_enterprise("Initech", status=status)
    user = factories.make_user("pat@initech.test", enterprise=enterprise)
    _allowed(_set(user, "max_inference_tokens", 0))


def test_activating_an_enterprise_with_a_paid_user_below_the_minimum_is_refused(db):
    enterprise = factories.make_enterprise("Initech", status="pending")
    buy(enterprise, 2_000_000)
    factories.make_user("pat@initech.test", enterprise=enterprise, inference=MIN)
    factories.make_user("sam@initech.test", enterprise=enterprise, inference=0)
    _refused(
        r"1 Paid user\(s\) of this active enterprise \(first: sam@initech.test\)",
        ("UPDATE accounts_enterprise SET status = 'active' WHERE id = %s", [enterprise.pk]),
    )


def test_a_purchase_correction_below_what_is_assigned_is_refused(ann, bob):
    _refused(
        "This correction would leave 300,000 purchased inference tokens, below the 400,000 "
        "already assigned",
        (
            "INSERT INTO tokens_tokenpurchase (enterprise_id, inference_tokens, training_tokens,"
            " purchased_on, reference, note, recorded_at) VALUES (%s, -700000, 0, now(), 'X',"
            " '', now())",
            [ann.enterprise_id],
        ),
    )


def test_a_multi_row_change_is_checked_once_on_its_final_state(ann, bob):
    """Raising bob before lowering ann over-assigns for a moment: allowed, like one Save."""
    _allowed(
        _set(ann, "max_inference_tokens", 700_000),
        _set(bob, "max_inference_tokens", 300_000),
    )
    _allowed(
        _set(bob, "max_inference_tokens", 700_000),  # 1,400,000 assigned for a moment
        _set(ann, "max_inference_tokens", 300_000),
    )


def test_a_change_after_an_earlier_check_is_checked_again(ann, bob):
    """The once-per-enterprise shortcut never lets a later change through unchecked."""
    _commit_check()
    with pytest.raises(IntegrityError, match="Max Inference Tokens"), transaction.atomic():
        _sql(*_set(ann, "max_inference_tokens", 300_000))
        _commit_check()  # passes: 500,000 of 1,000,000, and marks the enterprise checked
        _sql(*_set(bob, "max_inference_tokens", 900_000))
        _commit_check()
