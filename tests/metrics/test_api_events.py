"""POST /api/v1/usage/events: per-event results, idempotency, roll-ups, overage."""

from __future__ import annotations

from datetime import date

import pytest

from accounts.models import Enterprise, User
from metrics.models import EnterpriseMonthlyUsage, MonthlyUsage, UsageEvent, UsageEventKey
from tests import factories
from tests.metrics.usage_helpers import (
    Api,
    event,
    ledger_sum,
    lifetime,
    make_key,
    make_users,
    month_inference,
    statuses,
)

pytestmark = pytest.mark.django_db
JAN = date(2026, 1, 1)


@pytest.fixture
def api(db) -> Api:
    return Api(make_key()[1])


def test_event_is_recorded_in_ledger_and_every_rollup(api, member, enterprise):
    response = api.events([event("e1", member.email, tokens=1200, model="gpt-4o")])

    assert response.status_code == 200
    assert response.json()["results"] == [
        {"index": 0, "id": "e1", "status": "recorded", "overage": True}
    ]
    stored = UsageEvent.objects.get()
    assert (stored.user, stored.enterprise, stored.tokens, stored.month) == (
        member,
        enterprise,
        1200,
        JAN,
    )
    assert month_inference(member, JAN) == 1200
    assert lifetime(member) == (1200, 0)
    per_model = EnterpriseMonthlyUsage.objects.get()
    assert (per_model.month, per_model.model, per_model.inference_tokens) == (JAN, "gpt-4o", 1200)


def test_embedding_goes_to_embedding_columns(api, member):
    api.events([event("e1", member.email, kind="embedding", tokens=70)])

    assert MonthlyUsage.objects.get().embedding_tokens == 70
    assert lifetime(member) == (0, 70)
    assert EnterpriseMonthlyUsage.objects.get().embedding_tokens == 70


def test_duplicate_id_is_counted_once(api, member):
    api.events([event("e1", member.email, tokens=500)])

    response = api.events([event("e1", member.email, tokens=500)])

    assert statuses(response) == ["duplicate"]
    assert UsageEvent.objects.count() == 1
    assert month_inference(member, JAN) == 500
    assert lifetime(member) == (500, 0)


def test_duplicate_within_one_batch_is_counted_once(api, member):
    response = api.events([event("e1", member.email), event("e1", member.email)])

    assert statuses(response) == ["recorded", "duplicate"]
    assert month_inference(member, JAN) == 100


def test_duplicate_with_other_offset_for_same_instant_is_still_duplicate(api, member):
    api.events([event("e1", member.email, occurred_at="2026-01-15T12:00:00Z")])

    response = api.events([event("e1", member.email, occurred_at="2026-01-15T13:00:00+01:00")])

    assert statuses(response) == ["duplicate"]


@pytest.mark.parametrize(
    "change",
    [
        {"tokens": 501},
        {"kind": "embedding"},
        {"occurred_at": "2026-01-15T12:00:01Z"},
        {"model": "other-model"},
    ],
)
def test_reused_id_with_different_content_is_conflict(api, member, change):
    api.events([event("e1", member.email, tokens=500)])

    response = api.events([{**event("e1", member.email, tokens=500), **change}])

    result = response.json()["results"][0]
    assert (result["status"], result["code"]) == ("rejected", "conflict")
    assert UsageEvent.objects.get().tokens == 500
    assert lifetime(member) == (500, 0)


def test_id_replayed_with_an_occurred_at_in_another_month_is_counted_once(api, member):
    """The ledger is partitioned by month (PostgreSQL), so only the key table can see that
    an id claiming March was already counted in January."""
    api.events([event("e1", member.email, tokens=500, occurred_at="2026-01-15T12:00:00Z")])

    response = api.events(
        [event("e1", member.email, tokens=500, occurred_at="2026-03-02T12:00:00Z")]
    )

    result = response.json()["results"][0]
    assert (result["status"], result["code"]) == ("rejected", "conflict")
    assert list(UsageEvent.objects.values_list("month", flat=True)) == [JAN]
    assert UsageEventKey.objects.get().month == JAN
    assert month_inference(member, date(2026, 3, 1)) == 0
    assert month_inference(member, JAN) == 500
    assert lifetime(member) == (500, 0)


def test_same_event_replayed_after_a_time_zone_change_is_a_duplicate(api, member, enterprise):
    """Same content, but the enterprise's new zone puts it in another month: still the
    event already counted, answered as any duplicate."""
    late_january = event("e1", member.email, tokens=500, occurred_at="2026-01-31T23:30:00Z")
    api.events([late_january])
    Enterprise.objects.filter(pk=enterprise.pk).update(time_zone="Asia/Tokyo")

    response = api.events([late_january])  # February 1st in Tokyo

    assert statuses(response) == ["duplicate"]
    assert list(UsageEvent.objects.values_list("month", flat=True)) == [JAN]
    assert month_inference(member, date(2026, 2, 1)) == 0
    assert lifetime(member) == (500, 0)


def test_reused_id_for_another_user_is_conflict(api, member, org_admin):
    api.events([event("e1", member.email)])

    response = api.events([event("e1", org_admin.email)])

    assert response.json()["results"][0]["code"] == "conflict"
    assert lifetime(org_admin) == (0, 0)


def test_conflict_within_one_batch_keeps_the_first(api, member):
    response = api.events(
        [event("e1", member.email, tokens=5), event("e1", member.email, tokens=6)]
    )

    assert statuses(response) == ["recorded", "rejected"]
    assert ledger_sum(member) == 5


def test_same_id_from_another_integration_is_another_event(api, member):
    other = Api(make_key("Search service")[1])
    api.events([event("e1", member.email)])

    response = other.events([event("e1", member.email)])

    assert statuses(response) == ["recorded"]
    assert month_inference(member, JAN) == 200


def test_batch_with_good_and_bad_events_records_the_good_ones(api, member, enterprise):
    loner = factories.make_user("loner@example.com")
    api.events([event("taken", member.email, tokens=1)])
    batch = [
        event("good-1", member.email, tokens=10),
        event("unknown", "nobody@example.com"),
        event("loner", loner.email),
        {**event("bad-tokens", member.email), "tokens": -3},
        event("taken", member.email, tokens=2),
        "not an object",
        event("good-2", member.email, tokens=20, kind="embedding"),
    ]

    response = api.events(batch)

    results = response.json()["results"]
    assert [r["status"] for r in results] == [
        "recorded",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "recorded",
    ]
    assert [r.get("code") for r in results] == [
        None,
        "unknown_user",
        "not_enterprise_user",
        "invalid",
        "conflict",
        "invalid",
        None,
    ]
    assert results[3]["field"] == "tokens"
    assert results[5]["id"] is None
    assert response.json()["summary"] == {
        "recorded": 2,
        "duplicate": 0,
        "rejected": 5,
        "overage": 2,
    }
    assert lifetime(member) == (11, 20)
    assert not UsageEvent.objects.filter(user=loner).exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", ""),
        ("id", "   "),
        ("id", "\t\n"),
        ("id", 12),
        ("id", "x" * 129),
        ("id", "nul\x00byte"),
        ("user", None),
        ("user", ["member@acme.test"]),
        ("kind", "chat"),
        ("kind", None),
        ("tokens", 0),
        ("tokens", -1),
        ("tokens", 1.5),
        ("tokens", "100"),
        ("tokens", True),
        ("tokens", 10**13),
        ("occurred_at", None),
        ("occurred_at", "yesterday"),
        ("occurred_at", "2026-01-15T12:00:00"),
        ("occurred_at", "2999-01-01T00:00:00Z"),
        ("occurred_at", "1999-12-31T23:59:59Z"),
        ("occurred_at", 1768478400),
        ("model", "m" * 101),
        ("model", 7),
    ],
)
def test_invalid_field_is_rejected_with_its_name(api, member, field, value):
    response = api.events([{**event("e1", member.email), field: value}])

    result = response.json()["results"][0]
    assert (result["status"], result["code"], result["field"]) == ("rejected", "invalid", field)
    assert not UsageEvent.objects.exists()


def test_event_id_is_trimmed_so_padding_does_not_make_a_new_event(api, member):
    first = api.events([event("  e1 ", member.email, tokens=500)])
    again = api.events([event("e1", member.email, tokens=500)])

    assert first.json()["results"][0]["id"] == "e1"
    assert statuses(again) == ["duplicate"]
    assert UsageEvent.objects.get().event_id == "e1"


def test_event_id_length_is_counted_after_trimming(api, member):
    response = api.events([event(" " + "x" * 128 + " ", member.email)])

    assert statuses(response) == ["recorded"]


def test_missing_model_is_recorded_as_blank(api, member):
    payload = event("e1", member.email)
    del payload["model"]

    assert statuses(api.events([payload])) == ["recorded"]
    assert UsageEvent.objects.get().model == ""


def test_user_email_matches_case_insensitively(api, member):
    response = api.events([event("e1", "  Member@ACME.test ")])

    assert statuses(response) == ["recorded"]
    assert UsageEvent.objects.get().user == member


def test_month_follows_the_enterprise_time_zone(api):
    new_york = factories.make_enterprise("NY Corp", time_zone="America/New_York")
    user = factories.make_user("ny@example.com", enterprise=new_york)

    api.events(
        [
            event("late-jan", user.email, occurred_at="2026-02-01T03:00:00Z", tokens=3),
            event("early-feb", user.email, occurred_at="2026-02-01T05:00:00Z", tokens=5),
        ]
    )

    assert month_inference(user, date(2026, 1, 1)) == 3
    assert month_inference(user, date(2026, 2, 1)) == 5


def test_month_in_utc_enterprise_starts_at_midnight_utc(api, member):
    api.events([event("e1", member.email, occurred_at="2026-02-01T03:00:00Z")])

    assert UsageEvent.objects.get().month == date(2026, 2, 1)


def test_month_in_time_zone_ahead_of_utc(api):
    tokyo = factories.make_enterprise("Tokyo KK", time_zone="Asia/Tokyo")
    user = factories.make_user("jp@example.com", enterprise=tokyo)

    api.events([event("e1", user.email, occurred_at="2026-01-31T16:00:00Z")])

    assert UsageEvent.objects.get().month == date(2026, 2, 1)


def test_usage_over_quota_is_recorded_and_flagged(api, enterprise):
    user = factories.make_user("capped@acme.test", enterprise=enterprise, inference=1000)

    first = api.events([event("a", user.email, tokens=600)])
    second = api.events([event("b", user.email, tokens=600)])

    assert first.json()["results"][0]["overage"] is False
    assert second.json()["results"][0]["overage"] is True
    assert month_inference(user, JAN) == 1200


def test_overage_counts_only_the_events_month(api, enterprise):
    user = factories.make_user("capped@acme.test", enterprise=enterprise, inference=1000)
    api.events([event("jan", user.email, tokens=900, occurred_at="2026-01-20T00:00:00Z")])

    response = api.events(
        [event("feb", user.email, tokens=900, occurred_at="2026-02-20T00:00:00Z")]
    )

    assert response.json()["results"][0]["overage"] is False


def test_embedding_overage_is_lifetime(api, enterprise):
    user = factories.make_user("capped@acme.test", enterprise=enterprise, embedding=1000)
    api.events([event("jan", user.email, kind="embedding", tokens=600)])

    response = api.events(
        [event("feb", user.email, kind="embedding", tokens=600, occurred_at="2026-02-02T00:00:00Z")]
    )

    assert response.json()["results"][0]["overage"] is True


def test_inference_overage_within_one_batch_flags_only_the_event_past_the_cap(api, enterprise):
    user = factories.make_user("capped@acme.test", enterprise=enterprise, inference=1000)

    response = api.events([event("a", user.email, tokens=600), event("b", user.email, tokens=600)])

    assert [r["overage"] for r in response.json()["results"]] == [False, True]
    assert response.json()["summary"]["overage"] == 1


def test_embedding_overage_within_one_batch_flags_only_the_event_past_the_cap(api, enterprise):
    user = factories.make_user("capped@acme.test", enterprise=enterprise, embedding=1000)
    batch = [
        event("a", user.email, kind="embedding", tokens=600),
        event("b", user.email, kind="embedding", tokens=600, occurred_at="2026-02-02T00:00:00Z"),
    ]

    response = api.events(batch)

    assert [r["overage"] for r in response.json()["results"]] == [False, True]


def test_overage_in_a_batch_starts_from_the_stored_total(api, enterprise):
    user = factories.make_user("capped@acme.test", enterprise=enterprise, inference=1000)
    api.events([event("a", user.email, tokens=700)])
    other = factories.make_user("other@acme.test", enterprise=enterprise, inference=1000)

    response = api.events(
        [
            event("b", user.email, tokens=300),
            event("c", other.email, tokens=999),
            event("d", user.email, tokens=1),
            event("e", user.email, kind="embedding", tokens=1),
        ]
    )

    assert [r["overage"] for r in response.json()["results"]] == [False, False, True, True]


def test_duplicates_in_a_batch_do_not_count_towards_overage(api, enterprise):
    user = factories.make_user("capped@acme.test", enterprise=enterprise, inference=1000)
    api.events([event("a", user.email, tokens=600)])

    response = api.events([event("a", user.email, tokens=600), event("b", user.email, tokens=400)])

    assert statuses(response) == ["duplicate", "recorded"]
    assert response.json()["results"][1]["overage"] is False


def test_suspended_enterprise_usage_is_still_recorded(api, member, enterprise):
    Enterprise.objects.filter(pk=enterprise.pk).update(status=Enterprise.Status.SUSPENDED)

    assert statuses(api.events([event("e1", member.email)])) == ["recorded"]


def test_banned_user_usage_is_still_recorded(api, enterprise):
    user = factories.make_user("b@acme.test", enterprise=enterprise, status=User.Status.BANNED)

    assert statuses(api.events([event("e1", user.email)])) == ["recorded"]


@pytest.mark.postgres  # SQLite's fallback path adds a statement or two for a mixed batch
def test_batch_costs_the_same_queries_for_one_or_many_events(
    api, enterprise, django_assert_max_num_queries
):
    users = make_users(enterprise, 20)
    api.events([event("warm-up", users[0].email)])  # the key-use log row of this hour
    batch = [
        event(f"e{n}", users[n % 20].email, tokens=n + 1, kind=("inference", "embedding")[n % 2])
        for n in range(500)
    ]

    with django_assert_max_num_queries(50) as one:
        api.events([event("single", users[1].email)])
    # The same statements for 500 events as for one: the rate limit and the ingest statement.
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = api.events(batch)

    assert response.json()["summary"]["recorded"] == 500
    assert len(one.captured_queries) <= 4


@pytest.mark.postgres
def test_batch_is_one_round_trip_on_postgresql(api, enterprise, django_assert_num_queries):
    users = make_users(enterprise, 20)
    api.events([event("warm-up", users[0].email)])  # key lookup and key-use log of this hour
    batch = [event(f"e{n}", users[n % 20].email, tokens=n + 1) for n in range(1000)]
    batch[3] = event("warm-up", users[0].email)  # a duplicate, answered from the same query
    batch[4] = event("e5", "nobody@example.com")  # an unknown user, likewise

    # The batch is one statement; the other query is the key's rate-limit bucket.
    with django_assert_num_queries(2):
        response = api.events(batch)

    assert response.json()["summary"] == {
        "recorded": 998,
        "duplicate": 1,
        "rejected": 1,
        "overage": 998,
    }
