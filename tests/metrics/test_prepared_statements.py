"""The ingest and quota statements are prepared once per connection; nothing else is."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection

from accounts.models import User
from tests import factories
from tests.metrics.usage_helpers import Api, event, make_key, month_inference, statuses

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
JAN = date(2026, 1, 1)  # the month of usage_helpers.event's default occurred_at


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def api() -> Api:
    return Api(make_key()[1])


@pytest.fixture
def member(enterprise) -> User:
    return factories.make_user("quota@acme.test", enterprise=enterprise, inference=10_000)


def test_hot_statements_are_prepared_once_per_connection_and_reused(api, member, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 10_000
    for n in range(3):
        assert statuses(api.events([event(f"p{n}", member.email, tokens=10)])) == ["recorded"]
        assert api.quota(member.email).json()["decision"] == "allowed"

    prepared = _prepared()
    assert len([s for s in prepared if "INSERT INTO metrics_usageeventkey" in s]) == 1
    assert len([s for s in prepared if "FROM accounts_user u" in s and "m.month IN" in s]) == 1
    assert len([s for s in prepared if "INSERT INTO rate_bucket" in s]) == 1
    # Django's own queries (the key lookup, the ORM) still bind on the client: not prepared.
    assert len(prepared) == 3
    assert month_inference(member, JAN) == 30


def test_a_replayed_event_through_the_prepared_statement_is_counted_once(api, member):
    first = api.events([event("same", member.email, tokens=7)])
    again = api.events([event("same", member.email, tokens=7)])

    assert statuses(first) == ["recorded"]
    assert statuses(again) == ["duplicate"]
    assert month_inference(member, JAN) == 7


def test_switched_off_nothing_is_prepared_and_the_answers_are_the_same(api, member, settings):
    settings.DB_PREPARED_STATEMENTS = False

    assert statuses(api.events([event("off", member.email, tokens=5)])) == ["recorded"]
    assert api.quota(member.email).json()["decision"] == "allowed"
    assert _prepared() == []
    assert month_inference(member, JAN) == 5


def test_a_user_banned_after_the_statement_was_prepared_is_refused(api, member):
    assert api.quota(member.email).json()["decision"] == "allowed"
    User.objects.filter(pk=member.pk).update(status=User.Status.BANNED)

    answer = api.quota(member.email).json()
    assert (answer["decision"], answer["reason"]) == ("denied", "banned")
