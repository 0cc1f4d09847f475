"""Row-lock proof on PostgreSQL: one code cannot be spent twice by simultaneous requests.

django-otp remembers the last used TOTP step (and deletes a used backup code) on the device
row. Without services._check_locked's SELECT ... FOR UPDATE, two requests reading the row at
the same instant would both accept the same code.
"""

from __future__ import annotations

import pytest

from accounts import services
from tests import factories
from tests.concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 6


def test_simultaneous_requests_spend_a_totp_code_once(org_admin):
    device = factories.make_totp_device(org_admin)
    code = factories.totp_code(device)
    results = run_together(
        [lambda: services.verify_second_factor(user=org_admin, code=code).ok] * THREADS
    )
    assert results.count(True) == 1, results


def test_simultaneous_requests_spend_a_backup_code_once(org_admin):
    factories.make_totp_device(org_admin)
    code = services.regenerate_backup_codes(user=org_admin)[0]
    results = run_together(
        [lambda: services.verify_second_factor(user=org_admin, code=code).ok] * THREADS
    )
    assert results.count(True) == 1, results
    assert services.backup_codes_left(org_admin) == 9
