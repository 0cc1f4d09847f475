"""Console pages and CSV exports over HTTP through gunicorn (production settings), with the
in-process (Django test client) figure alongside."""

from __future__ import annotations

import http.client
import re
import time
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench import http_server
from bench.report import cpu_check, median, percentile, table, verdict
from bench.scale import BIG, HUGE, admin_client

LIGHTEST = "Exports (lightest page)"
# (label, path) of every console page measured on the 10,000-user enterprise.
PAGES = [
    ("Dashboard", "/org/"),
    ("Users (by email)", "/org/users/"),
    ("Users by Total Usage", "/org/users/?sort=-total_usage"),
    ("Users by Monthly Inference", "/org/users/?sort=-month_inference"),
    ("Users by Prev Month Inference", "/org/users/?sort=-prev_month_inference"),
    ("Users by Max Inference", "/org/users/?sort=max_inference_tokens"),
    ("Users, last page", "/org/users/?page=last"),
    ("Users, last page by Monthly Inf.", "/org/users/?sort=month_inference&page=last"),
    # Users at zero usage first (read by email, checked against the roll-up), and a middle page.
    ("Users by Monthly Inf., ascending", "/org/users/?sort=month_inference"),
    ("Users, page 200 by Total Usage", "/org/users/?sort=-total_usage&page=200"),
    # The order is computed once a minute per worker (metrics.user_usage.runs_out_order): the
    # warm-up requests compute it, so this row is a page read with the order in the cache.
    ("Users by Runs out (order cached)", "/org/users/?sort=runs_out_days&page=7"),
    ("Token Statistics", "/org/token-statistics/"),
    ("Token Usage", "/org/token-usage/"),
    ("Monthly Data", "/org/monthly/"),
    ("Activity Logs", "/org/activity/"),
    ("Activity Logs, last page", "/org/activity/?page=last"),
    ("Activity Logs, filtered", "/org/activity/?action=allocation_changed"),
    ("Activity Logs, by actor", "/org/activity/?actor=u2%40"),
    # The lightest console page (links, one count, eight recent downloads): close to what any
    # page costs before its own work (session, user, MFA device, layout, navigation).
    (LIGHTEST, "/org/exports/"),
]

EXPORTS = [
    ("Token Usage CSV", BIG, "/org/exports/token-usage.csv"),
    ("Users CSV", BIG, "/org/exports/users.csv"),
    ("Users with Tokens CSV", BIG, "/org/exports/users-with-tokens.csv"),
    ("Users with Tokens CSV (100k users)", HUGE, "/org/exports/users-with-tokens.csv"),
    ("Activity Logs CSV", BIG, "/org/exports/activity.csv"),
]

PAGE_P95_MS = 50
PYTHON_MS = 15
EXPORT_ROWS_PER_S = 100_000
EXPORT_EXTRA_MB = 64


class HttpClient:
    """A signed-in admin's session cookie, sent to gunicorn as a browser behind TLS would."""

    def __init__(self, port: int, slug: str) -> None:
        client, _ = admin_client(slug)
        self.port = port
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        self.headers = {
            # Production settings name the cookie __Host-sessionid; this process may not.
            "Cookie": f"sessionid={session}; __Host-sessionid={session}",
            "X-Forwarded-Proto": "https",  # the TLS proxy's header (SECURE_PROXY_SSL_HEADER)
            "Host": "127.0.0.1",
        }

    def get(self, path: str, *, sink=None) -> tuple[float, int, int]:
        """(seconds, status, body bytes); the body read in 64 KiB blocks, handed to `sink`."""
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        conn.request("GET", path, headers=self.headers)
        response = conn.getresponse()
        size = 0
        while block := response.read(65536):
            size += len(block)
            if sink:
                sink(block)
        conn.close()
        return time.perf_counter() - started, response.status, size


def _resolve(path: str, client) -> str:
    """`page=last` becomes the last page's number, read from the first page's "Page 1 of N"."""
    if "page=last" not in path:
        return path
    html = client.get(path.replace("page=last", "page=1")).content.decode()
    found = re.search(r"Page 1 of (\d+)", html)
    return path.replace("page=last", f"page={found[1] if found else 1}")


_DECLARE = re.compile(r'^DECLARE "[^"]+" .*?CURSOR (WITH(OUT)? HOLD )?FOR ', re.S)


def _sql_once(queries: list[dict]) -> float:
    """Seconds to run the page's captured SQL statements back to back (over TCP)."""
    with connection.cursor() as cursor:
        started = time.perf_counter()
        for query in queries:
            cursor.execute(_DECLARE.sub("", query["sql"]))
            if cursor.description:
                cursor.fetchall()
        return time.perf_counter() - started


# The tables pages read through index-only scans: the roll-ups (updated by every event), the
# append-only activity log (counted on every Activity Logs page) and the users (counted on
# every Users page).
VACUUMED = [
    "metrics_monthlyusage",
    "metrics_dailyusage",
    "metrics_usagetotal",
    "core_activitylog",
    "accounts_user",
]


def _vacuum_first() -> None:
    """Index-only reads need pages marked all-visible, and the roll-ups' indexes hold their
    token columns, so every update leaves a dead entry until a vacuum. After a burst of
    ingest (`bench ingest` before this) that is up to a million dead entries. Deployments
    run autovacuum (the roll-ups at 1 % of rows changed, migration metrics 0012); this
    machine's server may not (the line says), so measure what a page costs once it has run."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        (autovacuum,) = cursor.fetchone()
        cursor.execute(
            "SELECT relname, n_live_tup, n_dead_tup FROM pg_stat_user_tables"
            " WHERE relname = ANY(%s) ORDER BY relname",
            [VACUUMED],
        )
        found = ", ".join(f"{name} {dead:,} dead / {live:,} live" for name, live, dead in cursor)
        print(f"Before the pages (autovacuum {autovacuum}): {found}; VACUUM (ANALYZE) first")
        for name in VACUUMED:
            cursor.execute(f"VACUUM (ANALYZE) {name}")


def run_pages(*, requests: int, app_dir: Path, port: int) -> None:
    database_url = http_server.password_role_url()
    print(http_server.auth_method(), "(this machine's pg_hba may not force scram)\n")
    _vacuum_first()
    server = http_server.start(app_dir, port, database_url, workers=1)
    try:
        _pages(requests, server)
    finally:
        server.stop()


def _pages(requests: int, server: http_server.Server) -> None:
    print(cpu_check())
    local, _ = admin_client(BIG)
    remote = HttpClient(server.port, BIG)
    paths = [(label, _resolve(raw_path, local)) for label, raw_path in PAGES]
    queries: dict[str, list[dict]] = {}
    for label, path in paths:
        for _ in range(3):  # warm-up: caches, connection, template loading
            local.get(path)
            remote.get(path)
        with CaptureQueriesContext(connection) as captured:
            local.get(path)
        queries[label] = [
            q
            for q in captured.captured_queries
            if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
        ]
    # Round-robin, one request of each page in turn: this machine's speed drifts by tens of
    # percent within a minute, and page after page that drift landed on whichever pages
    # were measured then. Interleaved, every page sees the same machine.
    times: dict[str, list[float]] = {label: [] for label, _ in paths}
    for _ in range(requests):
        for label, path in paths:
            elapsed, status, _ = remote.get(path)
            if status != 200:
                raise SystemExit(f"{path} answered {status} over HTTP")
            times[label].append(elapsed)
    in_process: dict[str, list[float]] = {label: [] for label, _ in paths}
    for _ in range(max(5, requests // 4)):
        for label, path in paths:
            in_process[label].append(_timed(local, path))
    # Each page's SQL replayed alone, the pages in turn too (the Dashboard's varied 11-18 ms
    # between runs when its five replays ran back to back).
    sql_alone: dict[str, list[float]] = {label: [] for label, _ in paths}
    for _ in range(max(9, requests // 2)):
        for label, _ in paths:
            sql_alone[label].append(_sql_once(queries[label]))
    measured = []
    for label, _ in paths:
        p50, p95 = median(times[label]) * 1000, percentile(times[label], 95) * 1000
        sql = median(sql_alone[label]) * 1000
        in_proc = median(in_process[label]) * 1000
        measured.append((label, p50, p95, sql, p50 - sql, len(queries[label]), in_proc))
    # "beyond lightest": the page's Python time less the lightest page's, i.e. what its own
    # work costs; it moves less than "Python ms" with the machine's speed.
    floor = next(python for label, _, _, _, python, _, _ in measured if label == LIGHTEST)
    rows = [
        [label, f"{p50:.1f}", f"{p95:.1f}", f"{sql:.1f}", f"{python:.1f}",
         f"{python - floor:+.1f}", count, f"{in_process:.1f}",
         verdict(p95 < PAGE_P95_MS and python <= PYTHON_MS)]
        for label, p50, p95, sql, python, count, in_process in measured
    ]  # fmt: skip
    table(
        f"Console pages over HTTP (gunicorn, 1 worker, production settings), 10,000-user "
        f"enterprise, {requests} requests each; target p95 < {PAGE_P95_MS} ms and Python "
        f"(page - SQL) <= {PYTHON_MS} ms",
        ["page", "p50 ms", "p95 ms", "SQL ms", "Python ms", "beyond lightest", "queries",
         "in-proc p50", "target"],
        rows,
    )  # fmt: skip
    print(cpu_check())


def _timed(client, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path)
    if response.streaming:
        for _ in response.streaming_content:
            pass
    return time.perf_counter() - started


def _rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def run_exports(*, app_dir: Path, port: int) -> None:
    database_url = http_server.password_role_url()
    server = http_server.start(app_dir, port, database_url, workers=1)
    try:
        _exports(server)
    finally:
        server.stop()


def _exports(server: http_server.Server) -> None:
    rows = []
    for label, slug, path in EXPORTS:
        client = HttpClient(server.port, slug)
        client.get(path)  # warm-up
        pid = server.worker_pid()
        before = _rss_kb(pid, "VmRSS")
        # Reset the worker's peak RSS (VmHWM) so the reading below is this download's peak.
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        lines = 0

        def count(block: bytes) -> None:
            nonlocal lines
            lines += block.count(b"\n")

        elapsed, status, size = client.get(path, sink=count)
        if status != 200:
            raise SystemExit(f"{path} answered {status} over HTTP")
        extra_mb = (_rss_kb(pid, "VmHWM") - before) / 1024
        data_rows = max(0, lines - 1)
        rate = data_rows / elapsed if elapsed else 0
        # A tiny export (a few dozen monthly rows) is judged on memory only.
        ok = extra_mb < EXPORT_EXTRA_MB and (rate >= EXPORT_ROWS_PER_S or data_rows < 1000)
        rows.append(
            [label, f"{data_rows:,}", f"{size / 1_048_576:.1f}", f"{elapsed:.2f}",
             f"{rate:,.0f}", f"{extra_mb:.1f}", verdict(ok)]
        )  # fmt: skip
    table(
        f"CSV exports over HTTP (gunicorn, 1 worker; target >= {EXPORT_ROWS_PER_S:,} rows/s, "
        f"< {EXPORT_EXTRA_MB} MB extra worker RSS)",
        ["export", "rows", "MB", "seconds", "rows/s", "extra RSS MB", "target"],
        rows,
    )
