"""Replays of a brand-new integration's events are looked up by id, whatever the statistics say.

An integration created after the last ANALYZE is estimated at one key row; with its id as a
literal, PostgreSQL read all of that integration's key rows and filtered the ids (seconds per
1,000-event batch once it had tens of thousands of rows).
"""

from __future__ import annotations

import json

import pytest
from django.db import connection

from metrics import ingest_sql
from metrics.models import Integration

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _add_keys(integration: Integration, count: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO metrics_usageeventkey (integration_id, event_id, month, user_id, kind,"
            " tokens, occurred_at, model) SELECT %s, 'e' || g, DATE '2026-01-01', 1,"
            " 'inference', 1, now(), '' FROM generate_series(1, %s) AS g",
            [integration.pk, count],
        )


def _key_scans(plan: dict) -> list[dict]:
    found = [plan] if plan.get("Relation Name") == "metrics_usageeventkey" else []
    for child in plan.get("Plans", []):
        found += _key_scans(child)
    return found


def _plan(sql: str, params: list) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        (raw,) = cursor.fetchone()
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def test_a_new_integrations_stored_events_are_read_by_id_not_by_integration():
    old = Integration.objects.create(name="Known")
    _add_keys(old, 5_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE metrics_usageeventkey")
    new = Integration.objects.create(name="Created after ANALYZE")
    _add_keys(new, 5_000)

    (scan,) = _key_scans(_plan(ingest_sql.STORED_SQL, [new.pk, ["e1", "e2"]]))

    assert "event_id" in scan.get("Index Cond", ""), scan
    assert "Filter" not in scan, scan
