"""The day roll-up (DailyUsage): kept by ingestion in the enterprise's time zone, on both
ingest paths, and held to the ledger by reconcile_usage."""

from __future__ import annotations

from datetime import date
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from metrics.models import DailyUsage
from tests import factories
from tests.metrics.usage_helpers import Api, event, make_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def tokyo_user():
    enterprise = factories.make_enterprise("Nippon", time_zone="Asia/Tokyo")
    return factories.make_user("kenji@nippon.test", enterprise=enterprise)


def days(user) -> dict[date, tuple[int, int]]:
    return {
        d.day: (d.inference_tokens, d.embedding_tokens)
        for d in DailyUsage.objects.filter(user=user)
    }


def test_events_are_summed_per_local_day(tokyo_user):
    api = Api(make_key()[1])
    api.events(
        [
            # 23:30 UTC on the 14th is already the 15th in Tokyo (UTC+9).
            event("a", tokyo_user.email, tokens=10, occurred_at="2026-01-14T23:30:00Z"),
            event("b", tokyo_user.email, tokens=5, occurred_at="2026-01-15T03:00:00Z"),
            event(
                "c",
                tokyo_user.email,
                tokens=7,
                kind="embedding",
                model="embed",
                occurred_at="2026-01-15T14:59:00Z",
            ),
            # 15:00 UTC is midnight in Tokyo: the next local day.
            event("d", tokyo_user.email, tokens=1, occurred_at="2026-01-15T15:00:00Z"),
        ]
    )
    api.events([event("e", tokyo_user.email, tokens=2, occurred_at="2026-01-15T05:00:00Z")])

    assert days(tokyo_user) == {date(2026, 1, 15): (17, 7), date(2026, 1, 16): (1, 0)}


def test_duplicates_do_not_add_to_the_day(tokyo_user):
    api = Api(make_key()[1])
    batch = [event("a", tokyo_user.email, tokens=10), event("a", tokyo_user.email, tokens=10)]
    api.events(batch)
    api.events(batch)

    assert sum(i for i, _e in days(tokyo_user).values()) == 10


def test_sqlite_path_keeps_the_same_days(tokyo_user, monkeypatch):
    """The portable path (other databases) writes the same day roll-up."""
    from metrics import ingest

    monkeypatch.setattr(ingest.connection, "vendor", "sqlite-like")
    key, _plain = make_key()
    ingest.record_usage_batch(
        integration=key,
        events=[
            event("a", tokyo_user.email, tokens=10, occurred_at="2026-01-14T23:30:00Z"),
            event(
                "b",
                tokyo_user.email,
                tokens=3,
                kind="embedding",
                model="m",
                occurred_at="2026-01-15T15:00:00Z",
            ),
        ],
    )

    assert days(tokyo_user) == {date(2026, 1, 15): (10, 0), date(2026, 1, 16): (0, 3)}


def test_reconcile_fails_when_a_day_is_corrupted(tokyo_user):
    Api(make_key()[1]).events([event("a", tokyo_user.email, tokens=10)])
    call_command("reconcile_usage", stdout=StringIO())

    DailyUsage.objects.update(inference_tokens=F("inference_tokens") - 1)
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("reconcile_usage", stdout=out)

    assert "DRIFT daily_usage" in out.getvalue()
    assert "ledger inference=10" in out.getvalue() and "roll-up inference=9" in out.getvalue()


def test_reconcile_fails_when_usage_sits_on_the_wrong_day(tokyo_user):
    """Moving a day's tokens to the UTC day (same month totals) is still drift."""
    Api(make_key()[1]).events(
        [event("a", tokyo_user.email, tokens=10, occurred_at="2026-01-14T23:30:00Z")]
    )
    DailyUsage.objects.update(day=date(2026, 1, 14))
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("reconcile_usage", stdout=out)

    assert out.getvalue().count("DRIFT daily_usage") == 2
