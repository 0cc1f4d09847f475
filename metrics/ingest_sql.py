"""The PostgreSQL ingest statement: one round trip records a whole batch.

One statement with data-modifying CTEs resolves the users by email, inserts the events
whose id is new to the key table (ON CONFLICT DO NOTHING), adds the inserted rows to the
roll-ups and returns what the service needs to answer every event (users, inserted
rows, roll-up totals after the batch, and the events that were already stored). Being one
statement it is one transaction: the roll-ups can never disagree with the ledger.
`bench ingest` runs this very text in pgbench, so the benchmark's ceiling and the
application cannot drift apart.

Arrays (unnest) rather than a VALUES list keep the text the same size whatever the batch
size, so PostgreSQL parses a short statement and psycopg adapts seven parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

# Every table and column is ours; values are parameters. Roll-up keys are grouped and
# sorted so concurrent batches lock roll-up rows in one order (no deadlock); events are
# inserted in event_id order for the same reason (two batches sharing ids).
BATCH_SQL = """
WITH input AS (
    SELECT * FROM unnest(
        %(idx)s::int[], %(ids)s::text[], %(emails)s::text[], %(kinds)s::text[],
        %(tokens)s::bigint[], %(occurred)s::timestamptz[], %(models)s::text[]
    ) AS t(idx, event_id, email, kind, tokens, occurred_at, model)
), users AS (
    SELECT u.id, u.email, u.enterprise_id, u.max_inference_tokens, u.max_embedding_tokens,
           e.time_zone
    FROM accounts_user u LEFT JOIN accounts_enterprise e ON e.id = u.enterprise_id
    WHERE u.email = ANY(%(emails)s::text[])
), extras AS (
    -- Temporary allocations counting now (the rule of tokens.models.ACTIVE_SQL): on top of
    -- the inference cap for the overage flags.
    SELECT u.email, sum(x.extra_inference)::bigint AS extra
    FROM users u JOIN tokens_temporaryallocation x
      ON x.user_id = u.id AND x.enterprise_id = u.enterprise_id
    WHERE x.reverted_at IS NULL AND x.ends_at > %(now)s
    GROUP BY u.email
), first AS (
    -- The first event of each id whose user is in an enterprise; later ones are repeats.
    SELECT DISTINCT ON (i.event_id) i.*, u.id AS user_id, u.enterprise_id,
           date_trunc('month', i.occurred_at AT TIME ZONE u.time_zone)::date AS month
    FROM input i JOIN users u ON u.email = i.email
    WHERE u.enterprise_id IS NOT NULL
    ORDER BY i.event_id, i.idx
), new_key AS (
    -- The idempotency record decides: an id is counted once, whatever month it claims
    -- (the partitioned ledger cannot hold a unique key without its month).
    INSERT INTO metrics_usageeventkey (integration_id, event_id, month, user_id, kind, tokens,
                                       occurred_at, model)
    SELECT %(integration)s, event_id, month, user_id, kind, tokens, occurred_at, model
    FROM first ORDER BY event_id
    ON CONFLICT (integration_id, event_id) DO NOTHING
    RETURNING event_id
), ins AS (
    INSERT INTO metrics_usageevent (integration_id, event_id, user_id, enterprise_id, kind,
                                    tokens, occurred_at, month, model, received_at)
    SELECT %(integration)s, event_id, user_id, enterprise_id, kind, tokens, occurred_at,
           month, model, %(now)s
    FROM first JOIN new_key USING (event_id) ORDER BY event_id
    RETURNING event_id, user_id, enterprise_id, kind, tokens, month, model
), monthly AS (
    INSERT INTO metrics_monthlyusage AS r
        (user_id, month, enterprise_id, inference_tokens, embedding_tokens)
    SELECT user_id, month, max(enterprise_id),
           coalesce(sum(tokens) FILTER (WHERE kind = 'inference'), 0),
           coalesce(sum(tokens) FILTER (WHERE kind = 'embedding'), 0)
    FROM ins GROUP BY user_id, month ORDER BY user_id, month
    ON CONFLICT (user_id, month) DO UPDATE SET enterprise_id = EXCLUDED.enterprise_id,
        inference_tokens = r.inference_tokens + EXCLUDED.inference_tokens,
        embedding_tokens = r.embedding_tokens + EXCLUDED.embedding_tokens
    RETURNING user_id, month, inference_tokens
), lifetime AS (
    INSERT INTO metrics_usagetotal AS r (user_id, enterprise_id, inference_tokens, embedding_tokens)
    SELECT user_id, max(enterprise_id),
           coalesce(sum(tokens) FILTER (WHERE kind = 'inference'), 0),
           coalesce(sum(tokens) FILTER (WHERE kind = 'embedding'), 0)
    FROM ins GROUP BY user_id ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE SET enterprise_id = EXCLUDED.enterprise_id,
        inference_tokens = r.inference_tokens + EXCLUDED.inference_tokens,
        embedding_tokens = r.embedding_tokens + EXCLUDED.embedding_tokens
    RETURNING user_id, embedding_tokens
), per_model AS (
    INSERT INTO metrics_enterprisemonthlyusage AS r
        (enterprise_id, month, model, inference_tokens, embedding_tokens)
    SELECT enterprise_id, month, model,
           coalesce(sum(tokens) FILTER (WHERE kind = 'inference'), 0),
           coalesce(sum(tokens) FILTER (WHERE kind = 'embedding'), 0)
    FROM ins GROUP BY enterprise_id, month, model ORDER BY enterprise_id, month, model
    ON CONFLICT (enterprise_id, month, model) DO UPDATE SET
        inference_tokens = r.inference_tokens + EXCLUDED.inference_tokens,
        embedding_tokens = r.embedding_tokens + EXCLUDED.embedding_tokens
), alert_add AS (
    -- Usage alerts (metrics.alerts). This batch's inference per user and month: with the
    -- total after it (`monthly`, exact under the row lock) it tells who crossed a threshold.
    SELECT user_id, month, sum(tokens) AS added FROM ins WHERE kind = 'inference'
    GROUP BY user_id, month
), alert_pool AS (
    -- Enterprises whose training pool this batch drew on: lifetime embedding after the
    -- batch (snapshot + this batch) and the purchased training pool.
    SELECT enterprise_id, max(month) AS month,
           sum(tokens) + (SELECT coalesce(sum(r.embedding_tokens), 0)
                            FROM metrics_enterprisemonthlyusage r
                           WHERE r.enterprise_id = ins.enterprise_id) AS used,
           (SELECT coalesce(sum(p.training_tokens), 0) FROM tokens_tokenpurchase p
             WHERE p.enterprise_id = ins.enterprise_id) AS cap
    FROM ins WHERE kind = 'embedding' GROUP BY enterprise_id
), alert_due AS (
    SELECT u.enterprise_id, m.user_id, 'inference' AS pool, m.month AS period,
           u.max_inference_tokens AS cap, m.inference_tokens - a.added AS before,
           m.inference_tokens AS used
    FROM monthly m JOIN alert_add a ON a.user_id = m.user_id AND a.month = m.month
    JOIN users u ON u.id = m.user_id
    WHERE u.max_inference_tokens > 0
    UNION ALL
    -- The pool total is a snapshot: two concurrent batches may both miss a crossing, so
    -- every batch past a threshold tries (the unique index keeps the first).
    SELECT enterprise_id, NULL, 'training', month, cap, 0, used FROM alert_pool WHERE cap > 0
), alerts AS (
    -- The outbox row, in this transaction, for thresholds this batch crossed ([80, 100]
    -- mirrors default_alert_thresholds); ON CONFLICT keeps one per threshold and period.
    INSERT INTO metrics_usagealert (enterprise_id, user_id, pool, threshold, period, cap, used,
                                    created_at, next_attempt_at, attempts, last_error, sent_to)
    SELECT d.enterprise_id, d.user_id, d.pool, t.pct::int, d.period, d.cap, d.used,
           %(now)s, %(now)s, 0, '', '[]'
    FROM alert_due d
    LEFT JOIN metrics_alertsettings s ON s.enterprise_id = d.enterprise_id
    CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(s.thresholds, '[80, 100]')) t(pct)
    WHERE coalesce(s.enabled, true) AND d.used * 100 >= t.pct::bigint * d.cap
      AND d.before * 100 < t.pct::bigint * d.cap
    ORDER BY 3, 1, 2, 4, 5
    ON CONFLICT DO NOTHING
    RETURNING user_id, enterprise_id, pool, threshold, used, period
), daily AS (
    -- The day in the enterprise's zone: the burn-rate forecast's roll-up (metrics.forecast).
    INSERT INTO metrics_dailyusage AS r
        (user_id, day, enterprise_id, inference_tokens, embedding_tokens)
    SELECT f.user_id, (f.occurred_at AT TIME ZONE u.time_zone)::date, max(f.enterprise_id),
           coalesce(sum(f.tokens) FILTER (WHERE f.kind = 'inference'), 0),
           coalesce(sum(f.tokens) FILTER (WHERE f.kind = 'embedding'), 0)
    FROM ins JOIN first f ON f.event_id = ins.event_id JOIN users u ON u.id = f.user_id
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (user_id, day) DO UPDATE SET enterprise_id = EXCLUDED.enterprise_id,
        inference_tokens = r.inference_tokens + EXCLUDED.inference_tokens,
        embedding_tokens = r.embedding_tokens + EXCLUDED.embedding_tokens
)
SELECT 'u', email, id, enterprise_id, max_inference_tokens, max_embedding_tokens,
       NULL::text, NULL::timestamptz, NULL::date
  FROM users
UNION ALL
SELECT 'i', event_id, user_id, enterprise_id, tokens, NULL, kind, NULL, month FROM ins
UNION ALL
SELECT 'm', NULL, user_id, NULL, inference_tokens, NULL, NULL, NULL, month FROM monthly
UNION ALL
SELECT 'l', NULL, user_id, NULL, embedding_tokens, NULL, NULL, NULL, NULL FROM lifetime
UNION ALL
-- The statement's snapshot predates its own INSERT: these are the events stored before.
-- From the key table, which holds the content: no statement here plans over every partition.
-- The integration as a sub-select (see STORED_SQL): the ids are always the index condition.
SELECT 's', event_id, user_id, NULL, tokens, NULL, kind || ':' || model, occurred_at, NULL
  FROM metrics_usageeventkey
 WHERE integration_id = (SELECT %(integration)s::bigint) AND event_id = ANY(%(ids)s::text[])
UNION ALL
SELECT 'a', NULL, user_id, enterprise_id, threshold, used, pool, NULL, period FROM alerts
UNION ALL
SELECT 'x', email, NULL, NULL, extra, NULL, NULL, NULL, NULL FROM extras
"""


def batch_params(
    integration_id: int, events: list[tuple[int, str, str, str, int, datetime, str]], now: datetime
) -> dict[str, Any]:
    """BATCH_SQL's parameters for (index, id, email, kind, tokens, occurred_at, model) rows."""
    columns = list(zip(*events, strict=True))
    names = ("idx", "ids", "emails", "kinds", "tokens", "occurred", "models")
    return {"integration": integration_id, "now": now} | {
        name: list(column) for name, column in zip(names, columns, strict=True)
    }


@dataclass
class BatchOutcome:
    """BATCH_SQL's answer, sorted by kind of row."""

    users: dict[str, tuple[int, int | None, int, int]]  # email -> id, enterprise, caps
    inserted: dict[str, date]  # event_id -> month
    monthly: dict[tuple[int, date], int]  # (user, month) -> inference after the batch
    lifetime: dict[int, int]  # user -> embedding after the batch
    stored: dict[str, tuple]  # event_id -> (user, kind, tokens, occurred_at, model)
    # Usage alerts this batch raised: (pool, user or None, enterprise, threshold, period).
    alerts: list[tuple] = field(default_factory=list)
    extras: dict[str, int] = field(default_factory=dict)  # email -> temporary extra now


def parse_outcome(rows: list[tuple]) -> BatchOutcome:
    out = BatchOutcome({}, {}, {}, {}, {})
    for tag, key, user_id, enterprise_id, number, cap, text, moment, month in rows:
        if tag == "u":
            out.users[key] = (user_id, enterprise_id, number, cap)
        elif tag == "i":
            out.inserted[key] = month
        elif tag == "m":
            out.monthly[(user_id, month)] = number
        elif tag == "l":
            out.lifetime[user_id] = number
        elif tag == "a":
            out.alerts.append((text, user_id, enterprise_id, number, month))
        elif tag == "x":
            out.extras[key] = number
        else:
            kind, _, model = text.partition(":")
            out.stored[key] = (user_id, kind, number, moment, model)
    return out


# The integration id as a sub-select, whose value the planner does not look at: an integration
# created after the last ANALYZE is estimated at one row, and PostgreSQL then reads all of its
# key rows by integration alone and filters the ids (4 s for a 1,000-event batch once it had
# 60,000 rows), instead of looking each id up in the (integration, event_id) key.
STORED_SQL = (
    "SELECT event_id, user_id, kind, tokens, occurred_at, model FROM metrics_usageeventkey"
    " WHERE integration_id = (SELECT %s::bigint) AND event_id = ANY(%s::text[])"
)
