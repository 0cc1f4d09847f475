"""POST /api/v1/quota/check and metrics.services.check_quota: every reason, remaining, reset."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from accounts.models import Enterprise, User
from metrics.quota import check_quota, next_month, usage_month
from tests import factories
from tests.metrics.usage_helpers import Api, event, make_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(db) -> Api:
    return Api(make_key()[1])


@pytest.fixture
def capped(enterprise) -> User:
    return factories.make_user(
        "capped@acme.test", enterprise=enterprise, inference=1000, embedding=500
    )


def now_iso() -> str:
    return timezone.now().isoformat()


def this_months_reset(tz: str = "UTC") -> str:
    return next_month(usage_month(timezone.now(), ZoneInfo(tz))).isoformat()


def test_allowed_within_quota_reports_remaining_and_reset(api, capped):
    api.events([event("e1", capped.email, tokens=300, occurred_at=now_iso())])

    response = api.quota(capped.email, "inference", 700)

    assert response.status_code == 200
    assert response.json() == {
        "decision": "allowed",
        "reason": "within_quota",
        "remaining": 700,
        "resets_at": this_months_reset(),
        "time_zone": "UTC",
        "reasons": [],
    }


def test_insufficient_quota_is_denied_with_what_is_left(api, capped):
    api.events([event("e1", capped.email, tokens=300, occurred_at=now_iso())])

    body = api.quota(capped.email, "inference", 701).json()

    assert (body["decision"], body["reason"], body["remaining"]) == (
        "denied",
        "insufficient_quota",
        700,
    )


def test_exhausted_quota_is_denied(api, capped):
    api.events([event("e1", capped.email, tokens=1000, occurred_at=now_iso())])

    body = api.quota(capped.email, "inference", 1).json()

    assert (body["decision"], body["reason"], body["remaining"]) == ("denied", "quota_exhausted", 0)


def test_overage_leaves_remaining_at_zero(api, capped):
    api.events([event("e1", capped.email, tokens=5000, occurred_at=now_iso())])

    assert api.quota(capped.email).json()["remaining"] == 0


def test_user_without_allocation_is_exhausted(api, member):
    assert api.quota(member.email).json()["reason"] == "quota_exhausted"


def test_last_months_usage_does_not_count(capped):
    _key, plaintext = make_key()
    Api(plaintext).events([event("jan", capped.email, tokens=1000)])  # January 2026

    decision = check_quota(
        user_email=capped.email,
        kind="inference",
        tokens=1000,
        now=datetime(2026, 2, 10, tzinfo=UTC),
    )

    assert (decision.decision, decision.remaining, decision.resets_at) == (
        "allowed",
        1000,
        date(2026, 3, 1),
    )


def test_embedding_quota_is_lifetime_and_never_resets(api, capped):
    api.events([event("old", capped.email, kind="embedding", tokens=400)])

    body = api.quota(capped.email, "embedding", 100).json()

    assert (body["decision"], body["remaining"], body["resets_at"]) == ("allowed", 100, None)
    assert api.quota(capped.email, "embedding", 101).json()["reason"] == "insufficient_quota"


def test_reset_date_follows_the_enterprise_time_zone():
    new_york = factories.make_enterprise("NY Corp", time_zone="America/New_York")
    user = factories.make_user("ny@example.com", enterprise=new_york, inference=1000)

    # 03:00 UTC on 1 February is still 31 January in New York.
    decision = check_quota(
        user_email=user.email, kind="inference", tokens=1, now=datetime(2026, 2, 1, 3, tzinfo=UTC)
    )

    assert decision.resets_at == date(2026, 2, 1)
    assert decision.as_dict()["time_zone"] == "America/New_York"


def test_usage_counts_in_the_enterprise_month_not_the_utc_month():
    new_york = factories.make_enterprise("NY Corp", time_zone="America/New_York")
    user = factories.make_user("ny@example.com", enterprise=new_york, inference=1000)
    Api(make_key()[1]).events(
        [event("e", user.email, occurred_at="2026-02-01T03:00:00Z", tokens=1000)]
    )

    january = check_quota(
        user_email=user.email, kind="inference", tokens=1, now=datetime(2026, 2, 1, 4, tzinfo=UTC)
    )
    february = check_quota(
        user_email=user.email, kind="inference", tokens=1, now=datetime(2026, 2, 1, 6, tzinfo=UTC)
    )

    assert (january.reason, february.reason) == ("quota_exhausted", "within_quota")


def test_unknown_user_is_denied(api):
    body = api.quota("nobody@example.com").json()

    assert (body["decision"], body["reason"], body["remaining"], body["resets_at"]) == (
        "denied",
        "unknown_user",
        0,
        None,
    )


def test_user_without_enterprise_is_denied(api):
    loner = factories.make_user("loner@example.com", inference=10**6)

    assert api.quota(loner.email).json()["reason"] == "no_enterprise"


def test_banned_user_is_denied(api, enterprise):
    user = factories.make_user(
        "b@acme.test", enterprise=enterprise, status=User.Status.BANNED, inference=10**6
    )

    body = api.quota(user.email).json()

    assert (body["decision"], body["reason"], body["remaining"]) == ("denied", "banned", 0)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (Enterprise.Status.PENDING, "enterprise_pending"),
        (Enterprise.Status.SUSPENDED, "enterprise_suspended"),
    ],
)
def test_inactive_enterprise_is_denied(api, capped, enterprise, status, reason):
    Enterprise.objects.filter(pk=enterprise.pk).update(status=status)

    body = api.quota(capped.email).json()

    assert (body["decision"], body["reason"], body["remaining"]) == ("denied", reason, 0)


def test_quota_check_changes_no_usage(api, capped):
    api.quota(capped.email, "inference", 10)

    assert api.quota(capped.email, "inference", 1000).json()["remaining"] == 1000


def test_quota_check_is_one_query(api, capped, django_assert_num_queries):
    api.quota(capped.email)  # the key lookup and the key-use log row of this hour

    # One statement for the decision, one UPSERT on the key's rate-limit bucket.
    with django_assert_num_queries(2):
        response = api.quota(capped.email)

    assert response.json()["decision"] == "allowed"
