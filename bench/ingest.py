"""Ingest throughput: the API through gunicorn vs. the same writes by raw SQL.

Both sides run the same number of concurrent clients (separate processes, so the load
generator is not held back by the GIL) for the same duration, in the same run.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.raw_sql import raw_batch_worker
from bench.report import table, verdict
from bench.scale import BIG

ROOT = Path(__file__).resolve().parent.parent
BATCH_RATIO = 0.30
SINGLE_RATIO = 0.25


def _database_url() -> str:
    return os.environ["DATABASE_URL"]


def _start_gunicorn(port: int, workers: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "PRODUCTION": "true",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "DB_CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
    }
    cmd = [
        sys.executable, "-m", "gunicorn", "asksage_admin.wsgi",
        "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning", "--access-logfile", "/dev/null",
    ]  # fmt: skip
    # A fixed argument list of our own: no untrusted input reaches the command line.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    _stop(proc)
    raise SystemExit("gunicorn did not answer /healthz within 30 s")


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _events(prefix: str, start: int, count: int, emails: list[str]) -> list[dict]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "id": f"{prefix}-{start + i}",
            "user": emails[(start + i) % len(emails)],
            "kind": "inference" if (start + i) % 4 else "embedding",
            "tokens": 100 + (start + i) % 900,
            "occurred_at": now,
            "model": "bench-model",
        }
        for i in range(count)
    ]


def http_worker(port: int, key: str, emails: list[str], batch: int, seconds: float, queue) -> None:
    """One client: POST batches of `batch` events until time is up; count recorded events."""
    prefix = f"http-{uuid.uuid4().hex[:12]}"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    sent = recorded = errors = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = json.dumps({"events": _events(prefix, sent, batch, emails)})
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/api/v1/usage/events", body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        sent += batch
        if response.status != 200:
            errors += 1
            continue
        results = json.loads(payload)["results"]
        recorded += sum(1 for r in results if r["status"] == "recorded")
    queue.put((recorded, errors))


def _run_clients(target, args: tuple, clients: int, seconds: float) -> tuple[float, int]:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, seconds, queue)) for _ in range(clients)]
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=seconds + 120) for _ in procs]
    elapsed = time.perf_counter() - started
    for proc in procs:
        proc.join()
    recorded = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    return recorded / elapsed, errors


def run_ingest(*, seconds: float, clients: int, workers: int) -> None:
    from accounts.models import User
    from metrics.keys import create_integration_key

    emails = list(
        User.objects.filter(enterprise__slug=BIG, status=User.Status.PAID)
        .order_by("id")
        .values_list("email", flat=True)[:5000]
    )
    _, key = create_integration_key(actor=None, name=f"bench-{uuid.uuid4().hex[:8]}")
    port = 8765
    from django.db import connections

    connections.close_all()  # forked clients must not share this process's connection
    proc = _start_gunicorn(port, workers)
    rows = []
    try:
        for label, batch, target in (
            ("single event", 1, SINGLE_RATIO),
            ("1,000-event batch", 1000, BATCH_RATIO),
        ):
            app_rate, app_errors = _run_clients(
                http_worker, (port, key, emails, batch), clients, seconds
            )
            raw_rate, raw_errors = _run_clients(
                raw_batch_worker, (_database_url(), emails, batch), clients, seconds
            )
            ratio = app_rate / raw_rate if raw_rate else 0.0
            rows.append(
                [
                    label,
                    f"{app_rate:,.0f}",
                    f"{raw_rate:,.0f}",
                    f"{ratio:.2f}",
                    f">= {target:.2f}",
                    app_errors + raw_errors,
                    verdict(ratio >= target),
                ]
            )
    finally:
        _stop(proc)
    table(
        f"Ingest, events/s ({clients} clients x {seconds:g} s; gunicorn {workers} workers, "
        f"PRODUCTION=true; raw = the same SQL over psycopg)",
        [
            "request shape",
            "API events/s",
            "raw SQL events/s",
            "ratio",
            "target",
            "errors",
            "result",
        ],
        rows,
    )
