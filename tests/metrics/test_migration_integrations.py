"""metrics 0002: every existing key becomes an integration; its events follow it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("metrics", "0001_initial")]
AFTER = [("metrics", "0002_integration")]


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


def test_each_key_becomes_an_integration_that_keeps_its_events(enterprise):
    user = factories.make_user("m@acme.test", enterprise=enterprise)
    old = migrate(BEFORE)
    key = old.get_model("metrics", "IntegrationKey").objects.create(
        name="Chat service", prefix="ask_x", digest="d" * 64
    )
    old.get_model("metrics", "UsageEvent").objects.create(
        integration_id=key.pk,
        event_id="e1",
        user_id=user.pk,
        enterprise_id=enterprise.pk,
        kind="inference",
        tokens=5,
        occurred_at=timezone.now(),
        month=timezone.now().date().replace(day=1),
    )

    new = migrate(AFTER)

    integration = new.get_model("metrics", "Integration").objects.get()
    assert (integration.pk, integration.name) == (key.pk, "Chat service")
    assert new.get_model("metrics", "IntegrationKey").objects.get().integration_id == key.pk
    assert new.get_model("metrics", "UsageEvent").objects.get().integration_id == key.pk
    # The id sequence moved past the copied ids.
    assert new.get_model("metrics", "Integration").objects.create(name="Next").pk > key.pk
