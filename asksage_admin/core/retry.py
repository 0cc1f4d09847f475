"""Transactions that survive faults: bounded retries, then a clear "busy" answer.

`run_transaction(fn)` runs `fn()` in one transaction. A serialization failure or
deadlock (SQLSTATE 40001 / 40P01) rolls it back completely and it runs again, a bounded
number of times; after that, or when the database connection is lost, `DatabaseBusy` is
raised, which the middleware answers with 503 and Retry-After (JSON for the API, a page for
the console) — never a 500 and never half a change. A PostgreSQL guard's refusal (a
constraint trigger, checked at commit) becomes the same `Refused` the service would raise.

Inside an outer transaction nothing can be retried (the outer one is already broken), so
the call just runs and errors propagate.
"""

from __future__ import annotations

import contextlib
import functools
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import (
    Error,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)

from asksage_admin.core.errors import guard_refusal

P = ParamSpec("P")
T = TypeVar("T")

RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
ATTEMPTS = 4
RETRY_AFTER_SECONDS = 2


class DatabaseBusy(Exception):
    """The database could not complete the change now; nothing was written. Try again."""

    def __init__(self, reason: str, *, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def sqlstate(exc: BaseException) -> str | None:
    return getattr(exc.__cause__, "sqlstate", None) or getattr(exc, "sqlstate", None)


def is_retryable(exc: BaseException) -> bool:
    return sqlstate(exc) in RETRYABLE_SQLSTATES


def is_connection_lost(exc: BaseException) -> bool:
    """The server went away (terminated backend, shutdown, network): class 08 or 57P."""
    state = sqlstate(exc) or ""
    if state.startswith(("08", "57P")):
        return True
    # A socket closed under psycopg ("consuming input failed: server closed the connection
    # unexpectedly", "the connection is closed") carries no SQLSTATE: the server never
    # got to say why. Errors the server reports always have one.
    return state == "" and isinstance(exc, OperationalError | InterfaceError)


def busy_from(exc: Error) -> DatabaseBusy | None:
    """The DatabaseBusy a database error stands for (retryable or connection lost), or None."""
    if is_retryable(exc):
        return DatabaseBusy("The database was busy with a conflicting change.")
    if is_connection_lost(exc):
        discard_connection()
        return DatabaseBusy("The database connection was lost.")
    return None


def discard_connection() -> None:
    """Drop a dead connection so the next query opens a fresh one (no restart needed)."""
    try:
        connection.close()
    except Error:
        connection.connection = None


def run_transaction(fn: Callable[[], T], *, attempts: int = ATTEMPTS, atomic: bool = True) -> T:
    """`fn()` in one transaction, retried on 40001/40P01 (see module doc).

    atomic=False for a `fn` that is already one transaction (a single statement, or its
    own atomic block): it is retried as it is, without a BEGIN/COMMIT round trip of ours.
    """
    wrap = transaction.atomic if atomic else contextlib.nullcontext
    if connection.in_atomic_block:
        with wrap():
            return fn()
    for attempt in range(1, attempts + 1):
        try:
            with wrap():
                return fn()
        except IntegrityError as exc:
            refusal = guard_refusal(exc)
            if refusal is not None:
                raise refusal from None
            raise
        except Error as exc:  # DatabaseError, and InterfaceError for a closed connection
            busy = busy_from(exc)
            if busy is None:
                raise
            if is_retryable(exc) and attempt < attempts:
                # Jittered backoff so the transactions that collided do not collide again.
                time.sleep(random.uniform(0.01, 0.05) * attempt)
                continue
            raise busy from exc
    raise AssertionError("unreachable")  # pragma: no cover


def retrying(fn: Callable[P, T]) -> Callable[P, T]:
    """Decorator form of run_transaction, for service functions that are one transaction."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_transaction(lambda: fn(*args, **kwargs))

    return wrapper
