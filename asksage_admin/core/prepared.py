"""A cursor for the statements every model call runs: planned once per connection, not per call.

Django's psycopg cursors bind parameters on the client and send the whole text each time,
so PostgreSQL parses and plans the ingest statement's CTEs on every request; planning was
most of that statement's time. The ingest and quota statements go through this cursor
instead: parameters bound by the server and the statement prepared the first time a
connection runs it (with persistent connections, once per worker), then only executed.
Every other query keeps Django's client-side binding.

`DB_PREPARED_STATEMENTS=false` turns it off, for a pooler that cannot keep prepared
statements (PgBouncer in transaction mode before 1.21, or without max_prepared_statements).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import psycopg
from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorWrapper


class _Statement(NamedTuple):
    query: bytes
    params: Any


class _Preparing(psycopg.Cursor):
    """Server-side binding, and every statement prepared (once per connection)."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        done = super().execute(query, params, prepare=True)
        # Django's query log (tests, DEBUG) reads the text from psycopg's `_query`, which a
        # prepared execution leaves empty: the statement as written, for the log only.
        self._query = _Statement(str(query).encode(), params)  # type: ignore[assignment]
        return done


@contextmanager
def prepared_cursor() -> Iterator[CursorWrapper]:
    """Django's cursor (errors, query log, execute wrappers) over a preparing psycopg cursor."""
    if connection.vendor != "postgresql" or not settings.DB_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            yield cursor
        return
    # What Django's own cursor() does first: replace a connection the server dropped.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # Django turns automatic preparing off; prepare=True still needs the manager on.
        # Client-binding cursors (all others) never prepare, whatever the threshold.
        raw.prepare_threshold = 2**31 - 1
    with connection.wrap_database_errors:
        inner = _Preparing(raw)
    # Django's wrappers take any DB-API cursor; its stubs say CursorWrapper.
    wrapped = (
        connection.make_debug_cursor(inner)  # type: ignore[arg-type]
        if connection.queries_logged
        else connection.make_cursor(inner)  # type: ignore[arg-type]
    )
    with wrapped as cursor:
        yield cursor
