"""Ingest and quota: the API through gunicorn vs. pgbench running the same SQL, same run.

The API side: gunicorn with the repository's gunicorn.conf.py and PRODUCTION=true,
connected to PostgreSQL over TCP as a role with a password (created here through psql as
postgres). Clients are separate processes (the load generator is not held back by the
GIL), each keeping its HTTP connection alive as an integration would. The ceiling side:
pgbench with the same number of clients, the same role, running the statements the
application sends (bench.pgbench generates them from the application's builders).

Then single events open loop: a fixed arrival rate at half the closed-loop maximum, latency
counted from each request's scheduled send time, beside gunicorn's own time and pgbench -R
at the same rate; and one request at that rate split into Python, JSON and SQL in process.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from bench import pgbench
from bench.http_client import KeepAliveClient, group_cpu_seconds, process_cpu_seconds
from bench.http_server import stop, wait_until_healthy
from bench.report import median, percentile, table, verdict
from bench.scale import BIG

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"single event": 0.25, "1,000-event batch": 0.5, "quota check": 0.25}
# Open loop: single events at this share of the closed-loop maximum, p99 under this.
OPEN_LOOP_SHARE = 0.5
OPEN_LOOP_P99_MS = 20.0
BENCH_ROLE = "bench"
JSON = {"Content-Type": "application/json"}
WARM_UP_SECONDS = 2.0
ACCESS_LOG = Path(tempfile.gettempdir(), "bench-gunicorn-access.log")


def _psql(dsn: dict[str, str], sql: str) -> str:
    """Run SQL as the database's own (superuser) account: role setup only."""
    args = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", dsn["host"],
            "-p", dsn["port"], "-U", dsn["user"], "-d", dsn["name"], "-c", sql]  # fmt: skip
    env = {**os.environ, "PGPASSWORD": dsn["password"]}
    # Fixed arguments; the SQL is ours (a generated password, no outside input).
    return subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout  # noqa: S603


def _parse_dsn(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": str(parts.port or 5432),
        "user": parts.username or "postgres",
        "password": parts.password or "",
        "name": parts.path.lstrip("/"),
    }


def bench_role(admin: dict[str, str]) -> tuple[dict[str, str], str]:
    """A LOGIN role with a fresh password and the app's table rights; what auth applies."""
    password = secrets.token_urlsafe(24)
    _psql(
        admin,
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{BENCH_ROLE}') THEN "
        f"CREATE ROLE {BENCH_ROLE} LOGIN; END IF; END $$; "
        f"ALTER ROLE {BENCH_ROLE} LOGIN PASSWORD '{password}'; "
        f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {BENCH_ROLE}; "
        f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {BENCH_ROLE};",
    )
    # The first host rule that can match a TCP connection from 127.0.0.1 (an approximation
    # of pg_hba matching that is enough to say whether the password is checked).
    rule = _psql(
        admin,
        "SELECT auth_method FROM pg_hba_file_rules WHERE type LIKE 'host%'"
        " AND (address IN ('127.0.0.1', 'all', 'samehost', '0.0.0.0')"
        " OR address LIKE '127.%') ORDER BY line_number LIMIT 1",
    ).strip()
    dsn = {**admin, "host": "127.0.0.1", "user": BENCH_ROLE, "password": password}
    note = (
        f"TCP 127.0.0.1:{dsn['port']} as role {BENCH_ROLE!r} with a password; "
        f"pg_hba method for this address: {rule or 'unknown'}"
        + (" (the server does not check the password)" if rule == "trust" else "")
    )
    return dsn, note


def _url(dsn: dict[str, str]) -> str:
    return f"postgres://{dsn['user']}:{dsn['password']}@{dsn['host']}:{dsn['port']}/{dsn['name']}"


def _start_gunicorn(
    port: int, dsn: dict[str, str], workers: int | None, app: str = "asksage_admin.wsgi"
) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _url(dsn),
        "PRODUCTION": "true",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "DB_CONN_MAX_AGE": "600",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_ACCESS_LOG": str(ACCESS_LOG),
        "GUNICORN_LOG_LEVEL": "warning",
        "LOG_LEVEL": "WARNING",
        # The limiter runs (its cost is part of the figure) but never says 429 to the load.
        "API_RATE_LIMIT_PER_MINUTE": "1000000000",
        "API_RATE_BURST": "1000000000",
    }
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    cmd = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app]
    # A fixed argument list of our own: no untrusted input reaches the command line.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603
    wait_until_healthy(proc, port, seconds=60)
    return proc


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
    """One integration: POST on one kept-alive connection until time is up.

    batch > 0: usage batches of that size (events recorded count); batch == 0: quota checks.
    Reports (done, errors, latencies, CPU seconds this client spent).
    """
    prefix = f"http-{uuid.uuid4().hex[:12]}"
    rng = random.Random(prefix)
    client = KeepAliveClient(port, {"Authorization": f"Bearer {key}", **JSON})
    sent = done = errors = 0
    latencies: list[float] = []
    cpu_before = process_cpu_seconds()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if batch:
            # Start anywhere in the user list, as the pgbench side picks a random window.
            start = rng.randrange(len(emails)) if sent == 0 else sent
            body = json.dumps({"events": _events(prefix, start, batch, emails)}).encode()
            url = "/api/v1/usage/events"
        else:
            body = (
                b'{"user": "%s", "kind": "inference", "tokens": 10}' % rng.choice(emails).encode()
            )
            url = "/api/v1/quota/check"
        began = time.perf_counter()
        try:
            status, payload = client.post(url, body)
        except (OSError, ValueError):
            errors += 1
            continue
        latencies.append((time.perf_counter() - began) * 1000)
        sent += batch
        if status != 200:
            errors += 1
        elif batch:
            results = json.loads(payload)["results"]
            done += sum(1 for r in results if r["status"] == "recorded")
        else:
            done += 1
    client.close()
    queue.put((done, errors, latencies, process_cpu_seconds() - cpu_before))


def paced_worker(
    port: int, key: str, emails: list[str], start_at: float, interval: float, first: int,
    stride: int, count: int, queue,
) -> None:  # fmt: skip
    """One sender of an open-loop run: request i is due at start_at + i * interval.

    This sender owns i = first, first + stride, ... on its own kept-alive connection. A
    request is sent at its due time or, when the previous answer came late, at once; its
    latency is counted from the due time, so waiting behind a slow answer is not hidden
    (no coordinated omission). time.monotonic is one clock for all processes on Linux.
    """
    prefix = f"open-{uuid.uuid4().hex[:12]}"
    client = KeepAliveClient(port, {"Authorization": f"Bearer {key}", **JSON})
    from_due: list[float] = []
    from_send: list[float] = []
    errors = 0
    for i in range(first, count, stride):
        due = start_at + i * interval
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        body = json.dumps({"events": _events(prefix, i, 1, emails)}).encode()
        sent = time.monotonic()
        ok = False
        try:
            status, payload = client.post("/api/v1/usage/events", body)
            ok = status == 200 and json.loads(payload)["summary"]["recorded"] == 1
        except (OSError, ValueError, KeyError):
            pass
        finished = time.monotonic()
        errors += not ok
        from_due.append((finished - due) * 1000)
        from_send.append((finished - sent) * 1000)
    client.close()
    queue.put((from_due, from_send, errors))


def _run_open_loop(
    port: int, key: str, emails: list[str], rate: float, seconds: float, senders: int
) -> tuple[list[float], list[float], int, float]:
    """Single events at a fixed arrival rate: (ms from due, ms from send, errors, elapsed s)."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    count = max(1, round(rate * seconds))
    start_at = time.monotonic() + 1.0  # every sender forked and connected before the first
    procs = [
        ctx.Process(
            target=paced_worker,
            args=(port, key, emails, start_at, 1 / rate, first, senders, count, queue),
        )
        for first in range(senders)
    ]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=seconds + 180) for _ in procs]
    elapsed = time.monotonic() - start_at
    for proc in procs:
        proc.join()
    from_due = [ms for r in results for ms in r[0]]
    from_send = [ms for r in results for ms in r[1]]
    return from_due, from_send, sum(r[2] for r in results), elapsed


def _access_log_ms(offset: int) -> list[float]:
    """gunicorn's own request time (%(M)s, whole ms) of the usage POSTs after offset."""
    times = []
    with ACCESS_LOG.open("rb") as log:
        log.seek(offset)
        for line in log.read().decode(errors="replace").splitlines():
            if '"POST /api/v1/usage/events ' not in line:
                continue
            for word in line.split():
                if word.endswith("ms") and word[:-2].isdigit():
                    times.append(float(word[:-2]))
                    break
    return times


def _ms(values: list[float]) -> str:
    return " / ".join(f"{percentile(values, p):.1f}" for p in (50, 95, 99)) + (
        f" / {max(values):.1f}" if values else ""
    )


def _open_loop_phase(
    port: int,
    key: str,
    emails: list[str],
    max_rate: float,
    seconds: float,
    senders: int,
    ceiling: tuple[list[str], dict[str, str]],
) -> float:
    """Print the open-loop table; returns the rate used (for the in-process breakdown)."""
    rate = max(1.0, max_rate * OPEN_LOOP_SHARE)
    offset = ACCESS_LOG.stat().st_size if ACCESS_LOG.exists() else 0
    load_before = os.getloadavg()[0]
    from_due, from_send, errors, elapsed = _run_open_loop(port, key, emails, rate, seconds, senders)
    load_after = os.getloadavg()[0]
    time.sleep(0.5)  # the last access-log lines
    server = _access_log_ms(offset)
    p99 = percentile(from_due, 99)
    scripts, dsn = ceiling
    alone = pgbench.run(scripts, dsn=dsn, clients=senders, seconds=seconds, rate=rate)
    table(
        f"Open loop: single-event requests at {OPEN_LOOP_SHARE:.0%} of the closed-loop maximum "
        f"({max_rate:,.1f}/s) = {rate:,.1f}/s for {seconds:g} s, {senders} paced senders, "
        f"latency from the scheduled send time; load average {load_before:.1f} before, "
        f"{load_after:.1f} after",
        ["measured", "requests", "rate/s", "p50 / p95 / p99 / max ms", "errors", "target",
         "result"],
        [
            ["from scheduled send", len(from_due), f"{len(from_due) / elapsed:,.1f}",
             _ms(from_due), errors, f"p99 < {OPEN_LOOP_P99_MS:g} ms",
             verdict(p99 < OPEN_LOOP_P99_MS and not errors)],
            ["from actual send", len(from_send), "", _ms(from_send), "", "", ""],
            ["gunicorn access log", len(server), "", _ms(server), "", "", ""],
            ["pgbench -R, same statement", len(alone.latencies_ms), f"{alone.tps:,.1f}",
             _ms(alone.latencies_ms), alone.failed, "", ""],
        ],
    )  # fmt: skip
    return rate


def single_request_breakdown(
    key: str, emails: list[str], rate: float, requests: int, *, quota: bool = False
) -> None:
    """Where a single-event request's (or quota check's) time goes: Django in process, SQL
    timed per statement.

    The Django test client at the open-loop rate (one at a time): total = the view and its
    middleware; SQL = the statements' round trips as the driver sees them; JSON = decoding
    the body and encoding the answer, timed alone.
    """
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    client = Client()
    prefix = f"inproc-{uuid.uuid4().hex[:12]}"
    totals: list[float] = []
    sql: list[float] = []
    statements: list[int] = []
    slowest: dict[str, list[float]] = {}

    def timer(execute, statement, params, many, context):
        began = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            ms = (time.perf_counter() - began) * 1000
            current.append(ms)
            slowest.setdefault(" ".join(statement.split()[:3])[:32], []).append(ms)

    body = answer = b""
    # A kept connection, as gunicorn runs with DB_CONN_MAX_AGE: a fresh backend per request
    # would plan the statement against cold catalog caches every time.
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = 600
    logging.disable(logging.INFO)  # the request log line of each request
    with override_settings(API_RATE_LIMIT_PER_MINUTE=10**9, API_RATE_BURST=10**9):
        for i in range(requests + 5):
            current: list[float] = []
            if quota:
                body = json.dumps({"user": emails[i % len(emails)], "kind": "inference",
                                   "tokens": 10})  # fmt: skip
            else:
                body = json.dumps({"events": _events(prefix, i, 1, emails)})
            began = time.perf_counter()
            with connection.execute_wrapper(timer):
                response = client.post(
                    "/api/v1/quota/check" if quota else "/api/v1/usage/events", body,
                    content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}",
                )  # fmt: skip
            elapsed = (time.perf_counter() - began) * 1000
            answer = response.content
            if response.status_code != 200:
                raise SystemExit(f"in-process request answered {response.status_code}")
            if i >= 5:  # the first requests warm the key cache and the connection
                totals.append(elapsed)
                sql.append(sum(current))
                statements.append(len(current))
            time.sleep(max(0.0, 1 / rate - elapsed / 1000))
    logging.disable(logging.NOTSET)
    json_runs = 2000
    began = time.perf_counter()
    for _ in range(json_runs):
        json.dumps(json.loads(answer))
        json.loads(body)
    json_ms = (time.perf_counter() - began) * 1000 / json_runs
    python = [t - s for t, s in zip(totals, sql, strict=True)]
    table(
        f"One {'quota check' if quota else 'single-event request'} in process (Django test "
        f"client, {requests} requests at "
        f"{rate:,.1f}/s, one at a time, the DATABASE_URL account over TCP, kept connection); ms",
        ["part", "p50", "p95", "p99"],
        [
            ["whole request (middleware + view)",
             *(f"{percentile(totals, p):.2f}" for p in (50, 95, 99))],
            [f"SQL ({median(statements):g} statements, round trips)",
             *(f"{percentile(sql, p):.2f}" for p in (50, 95, 99))],
            ["Python (whole - SQL)", *(f"{percentile(python, p):.2f}" for p in (50, 95, 99))],
            ["JSON decode + encode, alone", f"{json_ms:.3f}", "", ""],
        ]
        + [
            [f"  {name} (x{len(v)})", *(f"{percentile(v, p):.2f}" for p in (50, 95, 99))]
            for name, v in sorted(slowest.items(), key=lambda kv: -median(kv[1]))
        ],
    )  # fmt: skip


def _run_clients(
    args: tuple, clients: int, seconds: float
) -> tuple[float, int, list[float], float]:
    """(done/s, errors, latencies, client CPU seconds) of `clients` http_worker processes."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=http_worker, args=(*args, seconds, queue)) for _ in range(clients)]
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=seconds + 120) for _ in procs]
    elapsed = time.perf_counter() - started
    for proc in procs:
        proc.join()
    done = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    return done / elapsed, errors, [ms for r in results for ms in r[2]], sum(r[3] for r in results)


def _http_floor(
    port: int,
    dsn: dict[str, str],
    workers: int | None,
    key: str,
    emails: list[str],
    clients: int,
    seconds: float,
) -> float:
    """Quota checks/s with bench.noop_wsgi behind the same gunicorn.conf.py and client: what
    the HTTP server and the load generator leave of the machine, the API's floor."""
    proc = _start_gunicorn(port, dsn, workers, app="bench.noop_wsgi")
    try:
        _run_clients((port, key, emails, 0), clients, WARM_UP_SECONDS)
        rate, *_ = _run_clients((port, key, emails, 0), clients, seconds)
    finally:
        stop(proc)
    return rate


def _children_cpu_seconds() -> float:
    """CPU seconds of this process's finished children (pgbench runs as one)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _windows(emails: list[str], size: int, count: int = 5) -> list[list[str]]:
    step = max(1, len(emails) // count)
    return [(emails[i * step :] + emails[: i * step])[:size] for i in range(count)]


def run_ingest(
    *, seconds: float, clients: int, workers: int | None, open_seconds: float = 30.0
) -> None:
    from django.db import connections

    from accounts.models import User
    from metrics.keys import create_integration_key
    from metrics.models import Integration

    admin_dsn = _parse_dsn(os.environ["DATABASE_URL"])
    dsn, auth_note = bench_role(admin_dsn)
    emails = list(
        User.objects.filter(enterprise__slug=BIG, status=User.Status.PAID)
        .order_by("id")
        .values_list("email", flat=True)[:5000]
    )
    key, plaintext = create_integration_key(actor=None, name=f"bench-{uuid.uuid4().hex[:8]}")
    ceiling = Integration.objects.create(name=f"bench-pgbench-{uuid.uuid4().hex[:8]}")
    single_user = f"{pgbench.USER_TOKEN}{BIG}.example"
    shapes = [
        # The single event's user is a pgbench variable: u1..u4999 of the big enterprise.
        ("single event", 1, [pgbench.batch_script(ceiling.pk, [single_user], 1)]),
        (
            "1,000-event batch",
            1000,
            [pgbench.batch_script(ceiling.pk, w, 1000) for w in _windows(emails, 1000)],
        ),
        ("quota check", 0, [pgbench.quota_script()]),
    ]
    connections.close_all()  # forked clients must not share this process's connection
    port = 8765
    ACCESS_LOG.unlink(missing_ok=True)  # this run's lines only
    proc = _start_gunicorn(port, dsn, workers)
    rows = []
    quota_rates = (0.0, 0.0)  # (API, pgbench) checks/s, set by the quota phase
    cpu_rows: list[list[str]] = []
    open_rate = 0.0
    try:
        for label, batch, scripts in shapes:
            # Warm up first (each worker's first requests open its database connection and
            # load the URL resolvers): pgbench, too, leaves connection set-up out of its rate.
            _run_clients((port, plaintext, emails, batch), clients, WARM_UP_SECONDS)
            server_cpu = group_cpu_seconds(proc.pid)
            api_rate, api_errors, api_ms, client_cpu = _run_clients(
                (port, plaintext, emails, batch), clients, seconds
            )
            server_cpu = group_cpu_seconds(proc.pid) - server_cpu
            api_requests = len(api_ms)
            if batch == 1 and open_seconds > 0:
                # The closed-loop single-event rate is the maximum; the open loop runs at half.
                open_rate = _open_loop_phase(
                    port, plaintext, emails, api_rate, open_seconds, clients, (scripts, dsn)
                )
            pgbench_cpu = _children_cpu_seconds()
            ceiling_run = pgbench.run(scripts, dsn=dsn, clients=clients, seconds=seconds)
            pgbench_cpu = _children_cpu_seconds() - pgbench_cpu
            cpu_rows.append(
                [
                    label,
                    f"{1000 * client_cpu / max(api_requests, 1):.2f}",
                    f"{1000 * server_cpu / max(api_requests, 1):.2f}",
                    f"{1000 * pgbench_cpu / max(len(ceiling_run.latencies_ms), 1):.3f}",
                ]
            )
            ceiling_rate = ceiling_run.tps * max(batch, 1)
            if batch == 0:
                quota_rates = (api_rate, ceiling_rate)
            ratio = api_rate / ceiling_rate if ceiling_rate else 0.0
            rows.append(
                [
                    label,
                    f"{ceiling_rate:,.0f}",
                    f"{api_rate:,.0f}",
                    f"{ratio:.2f}",
                    f">= {TARGETS[label]:.2f}",
                    f"{percentile(api_ms, 50):.1f} / {percentile(api_ms, 99):.1f}",
                    pgbench.p50_p99(ceiling_run.latencies_ms),
                    f"{api_errors} / {ceiling_run.failed}",
                    verdict(ratio >= TARGETS[label]),
                ]
            )
    finally:
        stop(proc)
    floor = _http_floor(port + 1, dsn, workers, plaintext, emails, clients, seconds)
    unit = "events/s (quota: checks/s)"
    table(
        f"Ingest, {unit}: {clients} clients x {seconds:g} s each; API = gunicorn -c "
        f"gunicorn.conf.py (workers {workers or 'from CPU count'}), PRODUCTION=true; "
        f"ceiling = pgbench -M prepared, same statements",
        [
            "request shape",
            "pgbench ceiling",
            "API",
            "ratio",
            "target",
            "API p50/p99 ms",
            "pgbench p50/p99 ms",
            "errors API/pgbench",
            "result",
        ],
        rows,
    )
    table(
        "CPU per request, ms (same run): the load generators share the 2 cores with the server",
        ["request shape", "API client", "gunicorn + Django", "pgbench client"],
        cpu_rows,
    )
    quota_rate, quota_ceiling = quota_rates
    print(
        "HTTP server alone (same gunicorn.conf.py and client, a WSGI app answering a fixed"
        f" quota decision: no Django, no SQL): {floor:,.0f} checks/s ="
        f" {floor / quota_ceiling:.2f} of the quota ceiling; the API reaches"
        f" {quota_rate / floor:.2f} of that floor.\n"
    )
    print(f"Database connection: {auth_note}")
    print(f"Access log (with request ids): {ACCESS_LOG}\n", flush=True)
    if open_rate:
        single_request_breakdown(plaintext, emails, open_rate, requests=200)
        single_request_breakdown(plaintext, emails, open_rate, requests=200, quota=True)
