"""The raw-SQL ceiling of ingest: the writes metrics.ingest.record_usage_batch makes,
sent straight to PostgreSQL over psycopg, without HTTP, JSON, Django or validation.

Per batch, in one transaction: look up the users by email, INSERT the events ON CONFLICT
DO NOTHING RETURNING, then upsert the three roll-ups (user-month, user lifetime,
enterprise-month-model) with `x = x + EXCLUDED.x`, keys sorted as the service sorts them.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import psycopg

ADD = "inference_tokens = {t}.inference_tokens + EXCLUDED.inference_tokens, " \
      "embedding_tokens = {t}.embedding_tokens + EXCLUDED.embedding_tokens"  # fmt: skip


def _values(rows: list[tuple]) -> str:
    group = "(" + ", ".join(["%s"] * len(rows[0])) + ")"
    return ", ".join([group] * len(rows))


def _write_batch(conn: psycopg.Connection, key_id: int, events: list[dict]) -> int:
    now = datetime.now(UTC)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "SELECT u.email, u.id, u.enterprise_id FROM accounts_user u "
            "JOIN accounts_enterprise e ON e.id = u.enterprise_id WHERE u.email = ANY(%s)",
            [list({e["user"] for e in events})],
        )
        users = {email: (uid, ent) for email, uid, ent in cur.fetchall()}
        month = now.date().replace(day=1)
        rows = sorted(
            (
                key_id,
                e["id"],
                *users[e["user"]],
                e["kind"],
                e["tokens"],
                now,
                month,
                e["model"],
                now,
            )
            for e in events
        )
        # Only placeholders are interpolated; every value is a parameter.
        sql = (
            "INSERT INTO metrics_usageevent (integration_id, event_id, user_id, enterprise_id,"
            " kind, tokens, occurred_at, month, model, received_at) VALUES " + _values(rows)
            + " ON CONFLICT (integration_id, event_id) DO NOTHING RETURNING event_id"
        )  # fmt: skip
        cur.execute(sql, [v for row in rows for v in row])
        inserted = {r[0] for r in cur.fetchall()}
        monthly: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        lifetime: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        per_model: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        for _k, event_id, uid, ent, kind, tokens, _o, m, model, _r in rows:
            if event_id not in inserted:
                continue
            slot = 0 if kind == "inference" else 1
            monthly[(uid, m, ent)][slot] += tokens
            lifetime[(uid, ent)][slot] += tokens
            per_model[(ent, m, model)][slot] += tokens
        if not inserted:
            return 0
        upserts = [
            ("metrics_monthlyusage", "user_id, month, enterprise_id", "(user_id, month)",
             [(u, m, ent, i, e) for (u, m, ent), (i, e) in sorted(monthly.items())],
             " RETURNING user_id, month, inference_tokens"),
            ("metrics_usagetotal", "user_id, enterprise_id", "(user_id)",
             [(u, ent, i, e) for (u, ent), (i, e) in sorted(lifetime.items())],
             " RETURNING user_id, embedding_tokens"),
            ("metrics_enterprisemonthlyusage", "enterprise_id, month, model",
             "(enterprise_id, month, model)",
             [(ent, m, model, i, e) for (ent, m, model), (i, e) in sorted(per_model.items())], ""),
        ]  # fmt: skip
        for table, keys, conflict, values, returning in upserts:
            cur.execute(
                f"INSERT INTO {table} ({keys}, inference_tokens, embedding_tokens) VALUES "
                + _values(values)
                + f" ON CONFLICT {conflict} DO UPDATE SET {ADD.format(t=table)}{returning}",
                [v for row in values for v in row],
            )
            if returning:
                cur.fetchall()
    return len(inserted)


def raw_batch_worker(dsn: str, emails: list[str], batch: int, seconds: float, queue) -> None:
    """One client: write batches of `batch` events straight to PostgreSQL until time is up."""
    from bench.ingest import _events

    dsn = dsn.replace("postgres://", "postgresql://", 1)
    prefix = f"raw-{uuid.uuid4().hex[:12]}"
    recorded = errors = sent = 0
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM metrics_integrationkey WHERE name = 'scale-seed'")
            key_id = cur.fetchone()[0]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                recorded += _write_batch(conn, key_id, _events(prefix, sent, batch, emails))
            except psycopg.Error:
                errors += 1
            sent += batch
    queue.put((recorded, errors))
