"""The one thread harness of the PostgreSQL concurrency tests.

Each job runs on its own thread, so on its own database connection (Django keeps one per
thread); a barrier releases them at the same instant, which is what makes a race likely.
Needs `transactional_db` (or `django_db(transaction=True)`): other threads cannot see rows
inside the test's own transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection


def run_together(jobs: Sequence[Callable[[], Any]], *, timeout: float = 60) -> list[Any]:
    """Run every job at once; return, in order, what each returned or the exception it raised.

    A deadlock, a 500 or a refusal all end up in the results for the test to judge; a job
    still running after `timeout` seconds fails the test.
    """
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(i: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[i] = job()
        except Exception as exc:
            results[i] = exc
        finally:
            # The thread's own connection; left open it would block the test database's drop.
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a job never finished (deadlock?)"
    return results


def succeeded(results: list[Any]) -> list[Any]:
    """`results` when no job raised; otherwise fail, showing every exception."""
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return results
