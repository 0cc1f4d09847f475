"""The usage roll-ups are vacuumed early: their indexed token columns make no update HOT."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_rollups_are_vacuumed_after_one_percent_of_rows_changed():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)",
            [
                [
                    "metrics_monthlyusage",
                    "metrics_dailyusage",
                    "metrics_usagetotal",
                    "metrics_enterprisemonthlyusage",
                ]
            ],
        )
        options = dict(cursor.fetchall())

    assert len(options) == 4
    for table, settings in options.items():
        assert "autovacuum_vacuum_scale_factor=0.01" in (settings or []), table
