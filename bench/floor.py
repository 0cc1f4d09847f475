"""`python -m bench floor`: where a console page's Python time goes, layer by layer.

In process (Django's test client), so no HTTP server or second process shares the cores:
an anonymous request through every middleware, a signed-in console request that renders
nothing (session, user, MFA device, the console access check), the console layout alone
(navigation, account menu, requests badge), then real pages. Each row's Python time is the
request less its SQL, both timed in the same request; the rows are measured in turn, one
request of each, so the machine's drift lands on all of them. The last column counts
Python function calls a request (cProfile): unlike milliseconds it does not move with the
machine's speed, so it compares two revisions on any day.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.test import Client, override_settings

from accounts.access import ConsoleRequest, console_view
from bench.report import cpu_check, median, table
from bench.scale import BIG, admin_client


def anonymous(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@console_view
def signed_in(request: ConsoleRequest) -> HttpResponse:
    return HttpResponse("ok")


@console_view
def layout(request: ConsoleRequest) -> HttpResponse:
    return render(request, "console_base.html", {})


# The three views above, served in this process only (bench.floor_urls), before real pages.
ROWS = [
    ("anonymous, no page", "/_floor/anonymous/", False),
    ("signed in, no page", "/org/_floor/signed-in/", True),
    ("console layout alone", "/org/_floor/layout/", True),
    ("Exports", "/org/exports/", True),
    ("Token Statistics", "/org/token-statistics/", True),
    ("Activity Logs", "/org/activity/", True),
    ("Dashboard", "/org/", True),
    ("Users (by email)", "/org/users/", True),
    ("Users by Monthly Inference", "/org/users/?sort=-month_inference", True),
]


def run_floor(*, requests: int) -> None:
    with override_settings(ROOT_URLCONF="bench.floor_urls"):
        _floor(requests)


def _floor(requests: int) -> None:
    print(cpu_check())
    admin, _ = admin_client(BIG)
    clients = {True: admin, False: Client()}
    sql = [0.0, 0.0]  # seconds in SQL, statements: this request's

    def timed(execute: Callable, query: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(query, params, many, context)
        finally:
            sql[0] += time.perf_counter() - started
            sql[1] += 1

    for _label, path, signed in ROWS:  # warm-up: caches, templates, connection
        for _ in range(3):
            if clients[signed].get(path).status_code != 200:
                raise SystemExit(f"{path} did not answer 200")
    python: dict[str, list[float]] = {label: [] for label, _, _ in ROWS}
    queries: dict[str, int] = {}
    with connection.execute_wrapper(timed):
        for _ in range(requests):
            for label, path, signed in ROWS:
                sql[:] = [0.0, 0.0]
                started = time.perf_counter()
                clients[signed].get(path)
                python[label].append(time.perf_counter() - started - sql[0])
                queries[label] = int(sql[1])
    rows = []
    previous = 0.0
    for label, path, signed in ROWS:
        ms = median(python[label]) * 1000
        step = f"{ms - previous:+.1f}" if label != ROWS[0][0] else ""
        previous = ms if path.startswith(("/_floor/", "/org/_floor/")) else previous
        rows.append(
            [label, f"{ms:.1f}", f"{min(python[label]) * 1000:.1f}", step, queries[label],
             f"{_calls(clients[signed], path):,}"]
        )  # fmt: skip
    table(
        f"Python time a request, in process, {requests} requests each, interleaved "
        f"(the request less its SQL; 'added' is what the row costs on top of the layer above "
        f"it, real pages on top of the layout)",
        ["request", "Python ms p50", "min", "added", "queries", "calls a request"],
        rows,
    )
    print(cpu_check())


def _calls(client: Client, path: str) -> int:
    """Function calls of one request (the mean of three), as cProfile counts them."""
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(3):
        client.get(path)
    profile.disable()
    return round(pstats.Stats(profile).total_calls / 3)  # type: ignore[attr-defined]
