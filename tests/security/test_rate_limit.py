"""API rate limit: a token bucket per integration key, shared through the database."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from asksage_admin.core.models import RateBucket
from asksage_admin.core.ratelimit import take_token
from metrics.models import UsageEvent
from tests.metrics.usage_helpers import Api, event, make_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def twenty_a_minute(settings) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 20
    settings.API_RATE_BURST = 20


@pytest.fixture
def api(db) -> Api:
    return Api(make_key()[1])


def test_the_21st_request_in_a_window_of_20_is_429_with_retry_after(twenty_a_minute, api, member):
    for n in range(20):
        assert api.quota(member.email).status_code == 200, n

    response = api.quota(member.email)

    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "rate_limited"
    assert "20 a minute" in response.json()["error"]["message"]
    # 20 a minute is one token every 3 s; the bucket is (almost) empty.
    assert 1 <= int(response["Retry-After"]) <= 3


def test_a_limited_batch_records_nothing(twenty_a_minute, api, member, settings):
    settings.API_RATE_BURST = 1
    assert api.events([event("e1", member.email)]).status_code == 200

    response = api.events([event("e2", member.email)])

    assert response.status_code == 429
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["e1"]


def test_each_key_has_its_own_bucket(twenty_a_minute, settings, member):
    settings.API_RATE_BURST = 1
    first, second = Api(make_key("Chat")[1]), Api(make_key("Docs")[1])
    assert first.quota(member.email).status_code == 200
    assert first.quota(member.email).status_code == 429
    assert second.quota(member.email).status_code == 200


def test_unauthenticated_requests_spend_no_tokens(twenty_a_minute, member):
    Api("ask_wrong").quota(member.email)
    assert not RateBucket.objects.exists()


def test_zero_a_minute_switches_the_limit_off(settings, api, member):
    settings.API_RATE_LIMIT_PER_MINUTE = 0
    settings.API_RATE_BURST = 1
    assert all(api.quota(member.email).status_code == 200 for _ in range(3))
    assert not RateBucket.objects.exists()


def test_the_bucket_refills_with_time(db):
    limits = {"per_minute": 60, "burst": 2}
    assert take_token("k", now=1000.0, **limits).allowed
    assert take_token("k", now=1000.0, **limits).allowed
    refused = take_token("k", now=1000.5, **limits)
    assert not refused.allowed
    assert refused.retry_after == 1
    assert take_token("k", now=1001.0, **limits).allowed  # one token back after 1 s


def test_the_bucket_never_holds_more_than_the_burst(db):
    limits = {"per_minute": 60, "burst": 2}
    take_token("k", now=0.0, **limits)
    outcomes = [take_token("k", now=10_000.0, **limits).allowed for _ in range(3)]
    assert outcomes == [True, True, False]


def test_a_clock_going_backwards_adds_no_tokens(db):
    limits = {"per_minute": 60, "burst": 1}
    assert take_token("k", now=1000.0, **limits).allowed
    assert not take_token("k", now=900.0, **limits).allowed


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_never_spend_the_same_token():
    """Ten connections at once against a bucket of five: exactly five get through."""
    outcomes: list[bool] = []
    barrier = threading.Barrier(10)

    def worker() -> None:
        barrier.wait()
        try:
            outcomes.append(take_token("shared", per_minute=1, burst=5).allowed)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == [False] * 5 + [True] * 5
