"""Console pages and CSV exports, served in-process by Django's test client."""

from __future__ import annotations

import gc
import re
import time
import tracemalloc

from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench.report import median, percentile, table, verdict
from bench.scale import BIG, HUGE, admin_client

# (label, path) of every console page measured on the 10,000-user enterprise.
PAGES = [
    ("Dashboard", "/org/"),
    ("Users (by email)", "/org/users/"),
    ("Users by Total Usage", "/org/users/?sort=-total_usage"),
    ("Users by Monthly Inference", "/org/users/?sort=-month_inference"),
    ("Users by Prev Month Inference", "/org/users/?sort=-prev_month_inference"),
    ("Users, last page", "/org/users/?page=400"),
    ("Token Statistics", "/org/token-statistics/"),
    ("Token Usage", "/org/token-usage/"),
    ("Monthly Data", "/org/monthly/"),
    ("Activity Logs", "/org/activity/"),
    ("Activity Logs, filtered", "/org/activity/?action=allocation_changed"),
]

EXPORTS = [
    ("Token Usage CSV", BIG, "/org/exports/token-usage.csv"),
    ("Users CSV", BIG, "/org/exports/users.csv"),
    ("Users with Tokens CSV", BIG, "/org/exports/users-with-tokens.csv"),
    ("Users with Tokens CSV (100k users)", HUGE, "/org/exports/users-with-tokens.csv"),
    ("Activity Logs CSV", BIG, "/org/exports/activity.csv"),
]

PAGE_P95_MS = 150
PAGE_SQL_RATIO = 3.0
EXPORT_ROWS_PER_S = 50_000
EXPORT_PEAK_MB = 64


def _get(client, path: str) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.get(path)
    if response.streaming:
        size = sum(len(chunk) for chunk in response.streaming_content)
    else:
        size = len(response.content)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}")
    return elapsed, size


_DECLARE = re.compile(r'^DECLARE "[^"]+" .*?CURSOR (WITH(OUT)? HOLD )?FOR ', re.S)


def _sql_alone(queries: list[dict], repeat: int) -> float:
    """Median time of running the page's captured SQL statements back to back."""
    timings = []
    with connection.cursor() as cursor:
        for _ in range(repeat):
            started = time.perf_counter()
            for query in queries:
                # A server-side cursor (QuerySet.iterator) is replayed as its plain query.
                cursor.execute(_DECLARE.sub("", query["sql"]))
                if cursor.description:
                    cursor.fetchall()
            timings.append(time.perf_counter() - started)
    return median(timings)


def run_pages(*, requests: int) -> None:
    client, _ = admin_client(BIG)
    rows = []
    for label, path in PAGES:
        for _ in range(3):  # warm-up: caches, connection, template loading
            _get(client, path)
        with CaptureQueriesContext(connection) as captured:
            _get(client, path)
        queries = [
            q
            for q in captured.captured_queries
            if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
        ]
        times = [_get(client, path)[0] for _ in range(requests)]
        p50, p95 = median(times) * 1000, percentile(times, 95) * 1000
        sql = _sql_alone(queries, repeat=max(5, requests // 4)) * 1000
        ratio = p50 / sql if sql else 0.0
        ok = p95 < PAGE_P95_MS and ratio <= PAGE_SQL_RATIO
        rows.append(
            [
                label,
                f"{p50:.1f}",
                f"{p95:.1f}",
                len(queries),
                f"{sql:.1f}",
                f"{ratio:.2f}",
                verdict(ok),
            ]
        )
    table(
        f"Console pages, 10,000-user enterprise ({requests} requests each; target p95 < "
        f"{PAGE_P95_MS} ms and page <= {PAGE_SQL_RATIO:g} x its SQL)",
        ["page", "p50 ms", "p95 ms", "queries", "SQL alone ms", "page/SQL", "target"],
        rows,
    )


def run_exports() -> None:
    rows = []
    for label, slug, path in EXPORTS:
        client, _ = admin_client(slug)
        _get(client, path)  # warm-up
        response = client.get(path)
        started = time.perf_counter()
        lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
        elapsed = time.perf_counter() - started
        data_rows = max(0, lines - 1)
        gc.collect()
        tracemalloc.start()
        response = client.get(path)
        for _chunk in response.streaming_content:
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rate = data_rows / elapsed if elapsed else 0
        peak_mb = peak / 1_048_576
        # A tiny export (a few dozen monthly rows) is judged on memory only.
        ok = peak_mb < EXPORT_PEAK_MB and (rate >= EXPORT_ROWS_PER_S or data_rows < 1000)
        rows.append(
            [
                label,
                f"{data_rows:,}",
                f"{elapsed:.2f}",
                f"{rate:,.0f}",
                f"{peak_mb:.1f}",
                verdict(ok),
            ]
        )
    table(
        f"CSV exports (target >= {EXPORT_ROWS_PER_S:,} rows/s, < {EXPORT_PEAK_MB} MB extra memory)",
        ["export", "rows", "seconds", "rows/s", "peak MB (traced)", "target"],
        rows,
    )
