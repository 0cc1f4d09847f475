"""Property: after any sequence of batches, the results follow the idempotency rules and
the roll-ups equal the ledger (reconcile_usage passes) with months in each enterprise's zone."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from metrics.ingest import record_usage_batch
from metrics.models import MonthlyUsage, UsageEvent
from tests import factories
from tests.metrics.usage_helpers import make_key

pytestmark = pytest.mark.django_db
ZONES = {"utc.test": "UTC", "ny.test": "America/New_York", "in.test": "Asia/Kolkata"}
UNKNOWN = "ghost@nowhere.test"
LONER = "loner@solo.test"
BOUNDARIES = [datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3)]

moments = st.builds(
    lambda base, seconds: base + timedelta(seconds=seconds),
    st.sampled_from(BOUNDARIES),
    st.integers(-36 * 3600, 36 * 3600),
)
events = st.fixed_dictionaries(
    {
        "id": st.sampled_from([f"id-{n}" for n in range(12)]),
        "user": st.sampled_from(
            [f"{n}@{domain}" for domain in ZONES for n in (1, 2)] + [UNKNOWN, LONER]
        ),
        "kind": st.sampled_from(["inference", "embedding"]),
        "tokens": st.one_of(st.integers(1, 10**6), st.sampled_from([0, -5])),
        "occurred_at": moments.map(lambda m: m.isoformat()),
        "model": st.sampled_from(["", "gpt-4o", "claude"]),
    }
)
batches = st.lists(st.lists(events, min_size=1, max_size=25), min_size=1, max_size=5)
_names = itertools.count()


@pytest.fixture
def people(db) -> None:
    for domain, zone in ZONES.items():
        enterprise = factories.make_enterprise(domain, time_zone=zone)
        User.objects.bulk_create(
            User(email=f"{n}@{domain}", enterprise=enterprise, password="!") for n in (1, 2)
        )
    User.objects.create(email=LONER, password="!")


def expected_status(event: dict, accepted: dict[str, dict]) -> str:
    """The rules, restated independently of the implementation."""
    if event["tokens"] < 1:
        return "invalid"
    if event["user"] == UNKNOWN:
        return "unknown_user"
    if event["user"] == LONER:
        return "not_enterprise_user"
    first = accepted.get(event["id"])
    if first is None:
        accepted[event["id"]] = event
        return "recorded"
    same = {k: v for k, v in first.items() if k != "occurred_at"} == {
        k: v for k, v in event.items() if k != "occurred_at"
    } and datetime.fromisoformat(first["occurred_at"]) == datetime.fromisoformat(
        event["occurred_at"]
    )
    return "duplicate" if same else "conflict"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=batches)
def test_random_ingestion_reconciles(people, batches):
    with transaction.atomic():
        key, _ = make_key(f"key-{next(_names)}")
        accepted: dict[str, dict] = {}
        for batch in batches:
            results = record_usage_batch(integration=key, events=batch)
            got = [r.code or r.status for r in results]
            assert got == [expected_status(e, accepted) for e in batch]

        call_command("reconcile_usage", stdout=StringIO())
        expected: Counter[tuple[str, str, str]] = Counter()
        for e in accepted.values():
            zone = ZoneInfo(ZONES[e["user"].split("@")[1]])
            month = datetime.fromisoformat(e["occurred_at"]).astimezone(zone).strftime("%Y-%m")
            expected[(e["user"], month, e["kind"])] += e["tokens"]
        stored: Counter[tuple[str, str, str]] = Counter()
        for row in MonthlyUsage.objects.select_related("user"):
            for kind in ("inference", "embedding"):
                if tokens := getattr(row, f"{kind}_tokens"):
                    stored[(row.user.email, f"{row.month:%Y-%m}", kind)] += tokens
        assert stored == expected
        assert UsageEvent.objects.count() == len(accepted)
        transaction.set_rollback(True)
