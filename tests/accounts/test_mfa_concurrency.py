"""Row-lock proof on PostgreSQL: one code cannot be spent twice by simultaneous requests.

django-otp remembers the last used TOTP step (and deletes a used backup code) on the device
row. Without services._check_locked's SELECT ... FOR UPDATE, two requests reading the row at
the same instant would both accept the same code.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from accounts import services
from tests import factories

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 6


def _run_together(job, count: int) -> list:
    """Run `job` on `count` threads (each its own connection) released at the same instant."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = job()
        except Exception as exc:  # a deadlock or a 500 shows up as a failed result
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a verification never finished (deadlock?)"
    return results


def test_simultaneous_requests_spend_a_totp_code_once(org_admin):
    device = factories.make_totp_device(org_admin)
    code = factories.totp_code(device)
    results = _run_together(
        lambda: services.verify_second_factor(user=org_admin, code=code).ok, THREADS
    )
    assert results.count(True) == 1, results


def test_simultaneous_requests_spend_a_backup_code_once(org_admin):
    factories.make_totp_device(org_admin)
    code = services.regenerate_backup_codes(user=org_admin)[0]
    results = _run_together(
        lambda: services.verify_second_factor(user=org_admin, code=code).ok, THREADS
    )
    assert results.count(True) == 1, results
    assert services.backup_codes_left(org_admin) == 9
