"""POST /api/v1/quota/check with a temporary allocation: counted until its end, not after,
whether or not expire_allocations has run."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests import factories
from tests.metrics.usage_helpers import Api, make_key
from tokens.models import TemporaryAllocation

pytestmark = pytest.mark.django_db
BASE = 200_000


@pytest.fixture
def api(db) -> Api:
    return Api(make_key()[1])


def _extra(user, *, ends_in: dt.timedelta, extra: int = 100_000) -> TemporaryAllocation:
    ends_at = timezone.now() + ends_in
    return TemporaryAllocation.objects.create(
        enterprise=user.enterprise,
        user=user,
        extra_inference=extra,
        until=ends_at.date(),
        ends_at=ends_at,
    )


def test_quota_counts_an_extra_until_its_end(api, enterprise):
    user = factories.make_user(enterprise=enterprise, inference=BASE)
    _extra(user, ends_in=dt.timedelta(hours=1))

    body = api.quota(user.email, "inference", BASE + 50_000).json()

    assert (body["decision"], body["remaining"]) == ("allowed", BASE + 100_000)


def test_quota_ignores_an_ended_extra_the_command_has_not_marked(api, enterprise):
    user = factories.make_user(enterprise=enterprise, inference=BASE)
    row = _extra(user, ends_in=-dt.timedelta(seconds=1))

    body = api.quota(user.email, "inference", BASE + 50_000).json()

    assert (body["decision"], body["reason"], body["remaining"]) == (
        "denied",
        "insufficient_quota",
        BASE,
    )
    row.refresh_from_db()
    assert row.reverted_at is None


def test_an_extra_from_a_former_enterprise_never_counts(api, enterprise, other_enterprise):
    user = factories.make_user(enterprise=enterprise, inference=BASE)
    _extra(user, ends_in=dt.timedelta(days=3))
    user.enterprise = other_enterprise
    user.save()

    assert api.quota(user.email, "inference", 1).json()["remaining"] == BASE
