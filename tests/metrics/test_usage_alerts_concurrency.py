"""Usage alerts under concurrent ingest (PostgreSQL): exactly one per threshold and period."""

from __future__ import annotations

import datetime as dt
import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core import mail
from django.db import connection

from metrics.alerts import deliver_due
from metrics.models import MonthlyUsage, UsageAlert
from tests import factories
from tests.concurrency import run_together, succeeded
from tests.metrics.helpers import make_purchase
from tests.metrics.usage_helpers import Api, event, make_key, statuses

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 8


def test_concurrent_batches_raise_exactly_one_alert_per_threshold_and_month(enterprise):
    user = factories.make_user("busy@acme.test", enterprise=enterprise, inference=8_000)
    other = factories.make_user("other@acme.test", enterprise=enterprise, inference=8_000)
    _key, plaintext = make_key()

    def work(n: int) -> list[str]:
        api, seen = Api(plaintext), []
        # 8 threads x 5 batches x 2 x 125 tokens: busy@ reaches 10,000 of 8,000 in January
        # and in February (other@ 5,000); every batch may be the one that crosses.
        for b in range(5):
            for month in ("2026-01-20T10:00:00Z", "2026-02-20T10:00:00Z"):
                tag = f"{month[:7]}-t{n}-b{b}"
                batch = [
                    event(f"{tag}-1", user.email, tokens=125, occurred_at=month),
                    event(f"{tag}-2", user.email, tokens=125, occurred_at=month),
                    event(f"{tag}-o", other.email, tokens=125, occurred_at=month),
                ]
                response = api.events(batch)
                assert response.status_code == 200, response.content
                seen += statuses(response)
        return seen

    results = succeeded(run_together([functools.partial(work, n) for n in range(THREADS)]))

    assert {s for r in results for s in r} == {"recorded"}
    jan, feb = dt.date(2026, 1, 1), dt.date(2026, 2, 1)
    assert MonthlyUsage.objects.get(user=user, month=jan).inference_tokens == 10_000
    assert MonthlyUsage.objects.get(user=other, month=jan).inference_tokens == 5_000
    got = sorted(UsageAlert.objects.values_list("user__email", "threshold", "period").order_by())
    assert got == [
        ("busy@acme.test", 80, jan),
        ("busy@acme.test", 80, feb),
        ("busy@acme.test", 100, jan),
        ("busy@acme.test", 100, feb),
    ]
    # Each alert records the total that crossed it: at or past the threshold, not far past.
    for alert in UsageAlert.objects.all():
        assert alert.threshold * 80 <= alert.used < alert.threshold * 80 + 250 * THREADS


def test_concurrent_embedding_batches_raise_one_training_pool_alert_per_threshold(enterprise):
    make_purchase(enterprise, training=100_000)
    users = [
        factories.make_user(f"t{n}@acme.test", enterprise=enterprise, embedding=50_000)
        for n in range(THREADS)
    ]
    _key, plaintext = make_key()

    def work(n: int) -> None:
        api = Api(plaintext)
        for b in range(4):  # 8 x 4 x 3,500 = 112,000: past 80 % and 100 % of the pool
            response = api.events(
                [event(f"e-{n}-{b}", users[n].email, kind="embedding", tokens=3_500)]
            )
            assert response.status_code == 200, response.content

    succeeded(run_together([functools.partial(work, n) for n in range(THREADS)]))
    # Two batches committing together may each miss the other's tokens; the next batch
    # that draws on the pool raises what they missed (still once: the unique index).
    Api(plaintext).events([event("last", users[0].email, kind="embedding", tokens=1)])

    got = sorted(UsageAlert.objects.values_list("pool", "threshold", "cap"))
    assert got == [("training", 80, 100_000), ("training", 100, 100_000)]


def test_workers_running_together_send_each_alert_once(enterprise, org_admin):
    users = [
        factories.make_user(f"w{n}@acme.test", enterprise=enterprise, inference=100)
        for n in range(20)
    ]
    for user in users:
        UsageAlert.objects.create(
            enterprise=enterprise, user=user, pool="inference", threshold=80,
            period=dt.date(2026, 1, 1), cap=100, used=80,
        )  # fmt: skip

    reports = succeeded(run_together([lambda: deliver_due(limit=50) for _ in range(4)]))

    assert sum(r.sent for r in reports) == 20
    assert len(mail.outbox) == 20
    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in users)
    assert not UsageAlert.objects.filter(sent_at__isnull=True).exists()


def test_the_worker_process_sends_due_alerts_and_stops_on_sigterm(enterprise):
    """`manage.py deliver_alerts` as operators run it: a separate process polling the table."""
    user = factories.make_user("w@acme.test", enterprise=enterprise, inference=100)
    alert = UsageAlert.objects.create(
        enterprise=enterprise, user=user, pool="inference", threshold=80,
        period=dt.date(2026, 1, 1), cap=100, used=80,
    )  # fmt: skip
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    console = "django.core.mail.backends.console.EmailBackend"
    env = {**os.environ, "DATABASE_URL": url, "EMAIL_BACKEND": console}
    root = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", "deliver_alerts", "--interval", "0.2"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            alert.refresh_from_db()
            if alert.sent_at:
                break
            time.sleep(0.2)
        assert alert.sent_at is not None and alert.sent_to == ["w@acme.test"]
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "reached 80% of the monthly inference allocation" in out
    assert "deliver_alerts: stopped" in err
