"""metrics 0007: the day roll-up is backfilled from the ledger, so reconcile passes at once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("metrics", "0006_partitioned_ledger")]
AFTER = [("metrics", "0007_daily_usage")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def back_to_latest():
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_existing_events_get_their_local_days():
    enterprise = factories.make_enterprise("Nippon", time_zone="Asia/Tokyo")
    user = factories.make_user("k@nippon.test", enterprise=enterprise)
    old = migrate(BEFORE)
    integration = old.get_model("metrics", "Integration").objects.create(name="svc")
    event = old.get_model("metrics", "UsageEvent")
    for n, (kind, tokens, at) in enumerate(
        [
            ("inference", 10, "2026-01-14T23:30:00+00:00"),  # 15 January in Tokyo
            ("embedding", 4, "2026-01-15T01:00:00+00:00"),
            ("inference", 1, "2026-01-15T15:00:00+00:00"),  # 16 January in Tokyo
        ]
    ):
        event.objects.create(
            integration_id=integration.pk,
            event_id=f"e{n}",
            user_id=user.pk,
            enterprise_id=enterprise.pk,
            kind=kind,
            tokens=tokens,
            occurred_at=dt.datetime.fromisoformat(at),
            month=dt.date(2026, 1, 1),
        )

    new = migrate(AFTER)

    days = {
        d.day: (d.inference_tokens, d.embedding_tokens)
        for d in new.get_model("metrics", "DailyUsage").objects.all()
    }
    assert days == {dt.date(2026, 1, 15): (10, 4), dt.date(2026, 1, 16): (1, 0)}
