"""Request limits shared by every worker: a token bucket per key, held in the database.

One statement a request: an UPSERT that refills the bucket by the time elapsed since its last
request (capped at the burst), takes a token if one is whole, and says whether it did. The
row lock the UPSERT takes serialises concurrent requests for the same key, so two workers
never spend the same token; different keys never wait on each other.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import JsonResponse

from asksage_admin.core.errors import json_error
from asksage_admin.core.models import RateBucket
from asksage_admin.core.prepared import prepared_cursor
from asksage_admin.core.retry import discard_connection, is_connection_lost


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: int  # whole seconds until a token is back; 0 when allowed


def _upsert_sql(vendor: str) -> str:
    least, greatest = ("LEAST", "GREATEST") if vendor == "postgresql" else ("MIN", "MAX")
    table = RateBucket._meta.db_table
    refill = f"{least}(%(burst)s, b.tokens + {greatest}(0, %(now)s - b.updated_at) * %(rate)s)"
    # Only our own identifiers are formatted in; every value is a query parameter.
    return (
        f"INSERT INTO {table} AS b (key, tokens, updated_at, allowed) "  # noqa: S608
        "VALUES (%(key)s, %(burst)s - 1, %(now)s, TRUE) "
        "ON CONFLICT (key) DO UPDATE SET "
        f"tokens = CASE WHEN {refill} >= 1 THEN {refill} - 1 ELSE {refill} END, "
        f"allowed = {refill} >= 1, "
        "updated_at = %(now)s "
        "RETURNING tokens, allowed"
    )


def take_token(key: str, *, per_minute: int, burst: int, now: float | None = None) -> RateDecision:
    """Spend one request of `key`'s bucket: `burst` at once, refilled at `per_minute`."""
    rate = per_minute / 60.0
    now = time.time() if now is None else now
    params: dict[str, str | float] = {"key": key, "burst": float(burst), "rate": rate, "now": now}
    try:
        tokens, allowed = _upsert(params)
    except (OperationalError, InterfaceError) as exc:
        # The API skips Django's per-request `SELECT 1` health check because this is its
        # first statement: a connection the server dropped while idle is replaced here, once.
        # Retrying is harmless (at worst one more token spent) and only outside a transaction.
        if connection.in_atomic_block or not is_connection_lost(exc):
            raise
        discard_connection()
        tokens, allowed = _upsert(params)
    if allowed:
        return RateDecision(True, 0)
    return RateDecision(False, max(1, math.ceil((1 - tokens) / rate)))


def _upsert(params: dict[str, str | float]) -> tuple[float, bool]:
    with prepared_cursor() as cursor:  # before every API request: planned once per connection
        cursor.execute(_upsert_sql(connection.vendor), params)
        tokens, allowed = cursor.fetchone()
    return tokens, allowed


def limit_api_key(key_id: int) -> JsonResponse | None:
    """None when the integration key may go on; otherwise the 429 to answer.

    Limits come from API_RATE_LIMIT_PER_MINUTE and API_RATE_BURST; 0 a minute means no limit.
    """
    per_minute, burst = settings.API_RATE_LIMIT_PER_MINUTE, settings.API_RATE_BURST
    if per_minute <= 0:
        return None
    decision = take_token(f"api-key:{key_id}", per_minute=per_minute, burst=burst)
    if decision.allowed:
        return None
    response = json_error(
        429,
        "rate_limited",
        f"Too many requests for this API key: {per_minute} a minute, bursts of {burst}. "
        f"Retry in {decision.retry_after} s, or send events in batches.",
    )
    response["Retry-After"] = str(decision.retry_after)
    return response
