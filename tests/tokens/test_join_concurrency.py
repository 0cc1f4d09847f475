"""A person joins at most one enterprise, even when several add them at the same instant.

Each enterprise locks only its own row, so the locks do not serialise two enterprises: the
conditional UPDATE in membership.join (`enterprise IS NULL`) is what decides. Without it, both
saves would succeed and the last one would silently move the person.
"""

from __future__ import annotations

import pytest

from accounts.models import Enterprise, User
from asksage_admin.core.audit import Action
from asksage_admin.core.errors import Refused
from asksage_admin.core.models import ActivityLog
from tests import factories
from tests.concurrency import run_together
from tests.tokens.helpers import MIN, buy
from tokens import invitations, membership

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROUNDS = 20
ENTERPRISES = 4
JOINED_ELSEWHERE = ("belongs to another enterprise", "belongs to another organization")


def _attach(actor: User, enterprise: Enterprise, email: str):
    return lambda: membership.attach_users(actor=actor, enterprise=enterprise, emails=[email])


def _invited(admin: User, enterprise: Enterprise, email: str) -> str:
    """An open invitation of `enterprise` for `email`; returns the link's token."""
    tokens: list[str] = []
    invitations.add_user(
        actor=admin, enterprise=enterprise, email=email, link_for=lambda t: tokens.append(t) or t
    )
    return tokens[0]


def _assert_one_winner(results: list, person: User, enterprises: list[Enterprise]) -> None:
    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, Refused)]
    assert not unexpected, unexpected
    winners = [i for i, r in enumerate(results) if not isinstance(r, Refused)]
    assert len(winners) == 1, results
    for refusal in (r for r in results if isinstance(r, Refused)):
        assert person.email in refusal.message
        assert any(reason in refusal.message for reason in JOINED_ELSEWHERE), refusal.message
    person.refresh_from_db()
    assert person.enterprise_id == enterprises[winners[0]].pk
    joined = ActivityLog.objects.filter(
        target=person.email, action__in=[Action.USER_ATTACHED, Action.USER_ADDED]
    )
    assert joined.count() == 1


def test_enterprises_attaching_one_person_at_once_only_one_gets_them(staff_user):
    enterprises = [
        factories.make_enterprise(status=Enterprise.Status.PENDING) for _ in range(ENTERPRISES)
    ]
    for round_ in range(ROUNDS):
        person = factories.make_user(f"wanted{round_}@example.com")

        results = run_together([_attach(staff_user, e, person.email) for e in enterprises])

        _assert_one_winner(results, person, enterprises)


def test_accepting_an_invitation_while_staff_attach_elsewhere_only_one_wins(staff_user):
    inviting = factories.make_enterprise("Inviting")
    buy(inviting, ROUNDS * MIN)
    admin = factories.make_user("admin@inviting.test", enterprise=inviting, role="admin")
    attaching = factories.make_enterprise("Attaching", status=Enterprise.Status.PENDING)
    for round_ in range(ROUNDS):
        person = factories.make_user(f"sought{round_}@example.com")
        token = _invited(admin, inviting, person.email)

        results = run_together(
            [
                lambda p=person, t=token: invitations.accept_invitation(user=p, token=t),
                _attach(staff_user, attaching, person.email),
            ]
        )

        _assert_one_winner(results, person, [inviting, attaching])
