"""Operational figures for Prometheus (/metrics) and one structured log line per request.

Counters live here, at the bottom layer, so any app can count what it does without
importing anything above it. Under gunicorn each worker is a process: with
PROMETHEUS_MULTIPROC_DIR set, prometheus-client writes the figures to files there and a
scrape adds up every worker's (the documented multi-process mode).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REQUEST_SECONDS = Histogram(
    "asksage_request_duration_seconds",
    "Time to answer a request, by view (URL name) and method.",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REQUESTS = Counter(
    "asksage_requests_total", "Requests answered, by view and status class.", ["view", "status"]
)
INGEST_EVENTS = Counter(
    "asksage_ingest_events_total",
    "Usage events reported through the API, by result (recorded, duplicate, rejected).",
    ["result"],
)
INGEST_OVERAGE = Counter(
    "asksage_ingest_overage_events_total", "Recorded events that went over a quota."
)
QUOTA_DECISIONS = Counter(
    "asksage_quota_decisions_total",
    "Quota checks answered, by decision and reason.",
    ["decision", "reason"],
)

request_log = logging.getLogger("asksage.request")


def count_ingest(summary: dict[str, int]) -> None:
    for result in ("recorded", "duplicate", "rejected"):
        if summary.get(result):
            INGEST_EVENTS.labels(result).inc(summary[result])
    if summary.get("overage"):
        INGEST_OVERAGE.inc(summary["overage"])


def count_quota(decision: str, reason: str) -> None:
    QUOTA_DECISIONS.labels(decision, reason).inc()


class DatabaseCollector(Collector):
    """Connection figures read at scrape time: this process's connection and, on
    PostgreSQL, the server's connections to this database by state."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("asksage_database_up", "1 when the database answered the scrape.")
        states = GaugeMetricFamily(
            "asksage_database_connections",
            "Server connections to this database by state (PostgreSQL).",
            labels=["state"],
        )
        try:
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute(
                        "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() GROUP BY 1"
                    )
                    for state, count in cursor.fetchall():
                        states.add_metric([state], count)
                else:
                    cursor.execute("SELECT 1")
            up.add_metric([], 1)
        except Exception:  # a scrape must report the outage, not fail with it
            up.add_metric([], 0)
        yield up
        yield states


_DATABASE = DatabaseCollector()


def exposition() -> tuple[bytes, str]:
    """The text a scrape receives: every worker's counters plus the database figures."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    output = generate_latest(registry)
    scratch = CollectorRegistry()
    scratch.register(_DATABASE)
    return output + generate_latest(scratch), CONTENT_TYPE_LATEST


def _view_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return (match.view_name if match else "") or "unmatched"


class RequestTelemetryMiddleware:
    """Times every request, counts it, and writes one log line about it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        view = _view_name(request)
        REQUEST_SECONDS.labels(view, request.method or "").observe(seconds)
        REQUESTS.labels(view, f"{response.status_code // 100}xx").inc()
        request_log.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            seconds * 1000,
            extra=_log_fields(request, response, seconds),
        )
        return response


def _log_fields(request: HttpRequest, response: HttpResponse, seconds: float) -> dict[str, Any]:
    user = getattr(request, "user", None)
    authenticated = user is not None and user.is_authenticated
    enterprise = getattr(request, "enterprise", None)
    user_id = user.pk if user is not None and authenticated else None
    return {
        "request_id": getattr(request, "request_id", ""),
        "method": request.method,
        "path": request.path,
        "view": _view_name(request),
        "status": response.status_code,
        "duration_ms": round(seconds * 1000, 1),
        "user_id": user_id,
        "enterprise_id": enterprise.pk
        if enterprise is not None
        else (getattr(user, "enterprise_id", None) if authenticated else None),
    }
