"""Usage ingestion: a batch of events becomes ledger rows and roll-up increments at once.

Validation happens in Python. On PostgreSQL one statement (metrics.ingest_sql) then
resolves the users, inserts the events (the key table's primary key decides duplicates,
even between concurrent batches) and adds their tokens to the roll-ups: one round trip,
one transaction, so the roll-ups always reconcile with the ledger. Other databases (the
SQLite laptop default) take the same steps as separate statements in one transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Enterprise, User
from asksage_admin.core.prepared import prepared_cursor
from metrics import alerts, ingest_sql
from metrics.keys import log_key_use
from metrics.models import (
    DailyUsage,
    EnterpriseMonthlyUsage,
    IntegrationKey,
    MonthlyUsage,
    UsageEvent,
    UsageEventKey,
    UsageKind,
    UsageTotal,
)
from metrics.quota import UsageRequestError, usage_month
from metrics.usage_events import EventResult, InvalidEvent, ParsedEvent, parse_event
from tokens.models import TemporaryAllocation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Row:
    """An event ready to insert: user resolved, month computed in the enterprise's zone."""

    event: ParsedEvent
    user: User
    month: date

    def content(self) -> tuple:
        e = self.event
        return (self.user.pk, e.kind, e.tokens, e.occurred_at, e.model)


def record_usage_batch(
    *, integration: IntegrationKey, events: list[Any], now: datetime | None = None
) -> list[EventResult]:
    """Record a batch of usage events; one result per event, in order.

    `integration` is the key that carried the batch; ids are unique per integration,
    whichever of its keys sent them. Overage is decided event by event in batch order.
    """
    if len(events) > settings.USAGE_MAX_EVENTS_PER_BATCH:
        raise UsageRequestError(
            "too_many_events",
            f"A batch holds at most {settings.USAGE_MAX_EVENTS_PER_BATCH} events.",
        )
    if not events:
        raise UsageRequestError("empty_batch", "The batch has no events.", field="events")
    now = now or timezone.now()
    results: list[EventResult | None] = [None] * len(events)
    parsed: list[ParsedEvent] = []
    for index, raw in enumerate(events):
        try:
            parsed.append(parse_event(index, raw, now))
        except InvalidEvent as exc:
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            results[index] = EventResult(
                index=index,
                id=raw_id if isinstance(raw_id, str) else None,
                status="rejected",
                code="invalid",
                field=exc.field,
                message=exc.message,
            )
    if parsed and connection.vendor == "postgresql":
        _store_in_one_statement(integration, parsed, results, now)
    elif parsed:
        rows = _resolve_users(parsed, results)
        if rows:
            with transaction.atomic():
                _store(integration, rows, results, now)
    return [r for r in results if r is not None]


def _store_in_one_statement(
    key: IntegrationKey, parsed: list[ParsedEvent], results: list[EventResult | None], now: datetime
) -> None:
    """PostgreSQL: users, events and roll-ups in one round trip (see metrics.ingest_sql)."""
    params = ingest_sql.batch_params(
        key.integration_id,
        [(e.index, e.event_id, e.email, e.kind, e.tokens, e.occurred_at, e.model) for e in parsed],
        now,
    )
    with prepared_cursor() as cursor:
        cursor.execute(ingest_sql.BATCH_SQL, params)
        out = ingest_sql.parse_outcome(cursor.fetchall())
    accepted = []
    for e in parsed:
        user = out.users.get(e.email)
        if user is None:
            results[e.index] = _rejected(e, "unknown_user", "user", "No user has this email.")
        elif user[1] is None:
            results[e.index] = _rejected(
                e, "not_enterprise_user", "user", "This user belongs to no enterprise."
            )
        else:
            accepted.append(e)
    for pool, user_id, enterprise_id, threshold, month in out.alerts:
        logger.info(
            "usage alert raised: %s %s%% %s user=%s enterprise=%s",
            pool,
            threshold,
            month,
            user_id,
            enterprise_id,
        )
    recorded = _answer_repeats(key, accepted, out, results)
    _answer_recorded(recorded, out, results)
    enterprise_ids = {cast(int, out.users[e.email][1]) for e in recorded}  # checked above
    log_key_use(key, enterprise_ids, endpoint="usage/events")


def _answer_repeats(
    key: IntegrationKey,
    accepted: list[ParsedEvent],
    out: ingest_sql.BatchOutcome,
    results: list[EventResult | None],
) -> list[ParsedEvent]:
    """Duplicates and conflicts; returns the events this batch recorded, in batch order."""
    first: dict[str, ParsedEvent] = {}
    for e in accepted:
        first.setdefault(e.event_id, e)
    # Neither inserted nor stored before the statement: a concurrent batch inserted the id
    # while this one ran (ON CONFLICT waited for it to commit). Read it now.
    raced = first.keys() - out.inserted.keys() - out.stored.keys()
    if raced:
        with connection.cursor() as cursor:
            cursor.execute(ingest_sql.STORED_SQL, [key.integration_id, sorted(raced)])
            out.stored.update((event_id, tuple(rest)) for event_id, *rest in cursor.fetchall())

    def content(e: ParsedEvent) -> tuple:
        return (out.users[e.email][0], e.kind, e.tokens, e.occurred_at, e.model)

    recorded = []
    for e in accepted:
        if e.event_id not in out.inserted:
            same = out.stored.get(e.event_id) == content(e)
        elif first[e.event_id] is e:
            recorded.append(e)
            continue
        else:  # a repeat of an id this batch inserted: compared with what it inserted
            same = content(first[e.event_id]) == content(e)
        results[e.index] = _duplicate_or_conflict(e, same)
    return recorded


def _answer_recorded(
    recorded: list[ParsedEvent], out: ingest_sql.BatchOutcome, results: list[EventResult | None]
) -> None:
    items: list[tuple[tuple, int, int]] = []
    after: dict[tuple, int] = {}
    for e in recorded:
        user_id, _enterprise, inference_cap, embedding_cap = out.users[e.email]
        if e.kind == UsageKind.INFERENCE:
            quota_key: tuple = (e.kind, user_id, out.inserted[e.event_id])
            after[quota_key] = out.monthly[quota_key[1:]]
            items.append((quota_key, e.tokens, inference_cap + out.extras.get(e.email, 0)))
        else:
            quota_key = (e.kind, user_id)
            after[quota_key] = out.lifetime[user_id]
            items.append((quota_key, e.tokens, embedding_cap))
    for e, over in zip(recorded, _overage_flags(items, after), strict=True):
        results[e.index] = EventResult(
            index=e.index, id=e.event_id, status="recorded", overage=over
        )


def _duplicate_or_conflict(e: ParsedEvent, same_content: bool) -> EventResult:
    if same_content:
        return EventResult(index=e.index, id=e.event_id, status="duplicate")
    return _rejected(e, "conflict", "id", "This id was already reported with different content.")


def _resolve_users(parsed: list[ParsedEvent], results: list[EventResult | None]) -> list[_Row]:
    """Attach users (one query); reject unknown users and users outside any enterprise."""
    emails = {e.email for e in parsed}
    # Emails are stored lower-case (User.save), so a plain IN uses the unique index.
    users = {u.email: u for u in User.objects.filter(email__in=emails).select_related("enterprise")}
    rows = []
    for e in parsed:
        user = users.get(e.email)
        if user is None:
            results[e.index] = _rejected(e, "unknown_user", "user", "No user has this email.")
        elif user.enterprise is None:
            results[e.index] = _rejected(
                e, "not_enterprise_user", "user", "This user belongs to no enterprise."
            )
        else:
            rows.append(_Row(e, user, usage_month(e.occurred_at, user.enterprise.tzinfo)))
    return rows


def _rejected(e: ParsedEvent, code: str, field: str, message: str) -> EventResult:
    return EventResult(
        index=e.index, id=e.event_id, status="rejected", code=code, field=field, message=message
    )


def _store(
    integration: IntegrationKey,
    rows: list[_Row],
    results: list[EventResult | None],
    now: datetime,
) -> None:
    # The first acceptable event of each id goes to the INSERT; repeats within the batch
    # are compared with whatever is stored afterwards, exactly like a later retry.
    first: dict[str, _Row] = {}
    repeats: list[_Row] = []
    for row in rows:
        if row.event.event_id in first:
            repeats.append(row)
        else:
            first[row.event.event_id] = row
    inserted_ids = _insert_events(integration, sorted(first.values(), key=_event_key), now)
    # Batch order: overage is decided event by event as they were sent.
    inserted = [row for row in first.values() if row.event.event_id in inserted_ids]
    others = [row for row in first.values() if row.event.event_id not in inserted_ids] + repeats
    _classify(integration, others, results)
    if not inserted:
        return
    monthly, lifetime = _upsert_rollups(inserted)
    embedding: dict[int, date] = {}
    added: dict[tuple[int, date], int] = defaultdict(int)
    for row in inserted:
        if row.event.kind == UsageKind.INFERENCE:
            added[(row.user.pk, row.month)] += row.event.tokens
        else:
            enterprise_id = cast(int, row.user.enterprise_id)  # rows have an enterprise
            embedding[enterprise_id] = max(row.month, embedding.get(enterprise_id, row.month))
    alerts.raise_alerts(
        monthly=monthly,
        added=added,
        users={row.user.pk: row.user for row in inserted},
        embedding=embedding,
        now=now,
    )
    extras = dict(
        TemporaryAllocation.objects.active(now)
        .filter(user__in={row.user.pk for row in inserted}, user__enterprise=F("enterprise"))
        .values_list("user_id")
        .annotate(extra=models.Sum("extra_inference"))
    )
    items, after = [], {}
    for row in inserted:
        quota_key = _quota_key(row)
        if row.event.kind == UsageKind.INFERENCE:
            after[quota_key] = monthly[quota_key[1:]]
            cap = row.user.max_inference_tokens + extras.get(row.user.pk, 0)
            items.append((quota_key, row.event.tokens, cap))
        else:
            after[quota_key] = lifetime[row.user.pk]
            items.append((quota_key, row.event.tokens, row.user.max_embedding_tokens))
    for row, over in zip(inserted, _overage_flags(items, after), strict=True):
        e = row.event
        results[e.index] = EventResult(
            index=e.index, id=e.event_id, status="recorded", overage=over
        )
    log_key_use(
        integration,
        {cast(int, row.user.enterprise_id) for row in inserted},  # rows have an enterprise
        endpoint="usage/events",
    )


def _quota_key(row: _Row) -> tuple:
    """The roll-up an event counts against: monthly inference or lifetime embedding."""
    if row.event.kind == UsageKind.INFERENCE:
        return (UsageKind.INFERENCE, row.user.pk, row.month)
    return (UsageKind.EMBEDDING, row.user.pk)


def _overage_flags(items: list[tuple[tuple, int, int]], after: dict[tuple, int]) -> list[bool]:
    """Per recorded event, in batch order: did the running total pass the allocation?

    `items` are (quota key, tokens, cap); `after` is each quota key's roll-up total after
    the batch. Minus this batch's share that is the total committed before it (the
    upsert's row lock orders concurrent batches); from there the events are counted one by
    one, so only those beyond the cap are overage.
    """
    running = dict(after)
    for quota_key, tokens, _cap in items:
        running[quota_key] -= tokens
    flags = []
    for quota_key, tokens, cap in items:
        running[quota_key] += tokens
        flags.append(running[quota_key] > cap)
    return flags


def _event_key(row: _Row) -> str:
    # Every batch inserts ids in the same order, so two batches sharing ids wait on each
    # other instead of each holding one id the other needs (deadlock).
    return row.event.event_id


def _insert_events(integration: IntegrationKey, rows: list[_Row], now: datetime) -> set[str]:
    """The ids this batch actually recorded: those new to the key table (INSERT ... ON
    CONFLICT DO NOTHING RETURNING), whose events then go to the ledger."""
    adapt_dt, adapt_date = (
        connection.ops.adapt_datetimefield_value,
        connection.ops.adapt_datefield_value,
    )
    new_ids = {
        event_id
        for (event_id,) in _insert(
            UsageEventKey,
            "integration_id, event_id, month, user_id, kind, tokens, occurred_at, model",
            [
                (
                    integration.integration_id,
                    row.event.event_id,
                    adapt_date(row.month),
                    row.user.pk,
                    row.event.kind,
                    row.event.tokens,
                    adapt_dt(row.event.occurred_at),
                    row.event.model,
                )
                for row in rows
            ],
            on_conflict="(integration_id, event_id) DO NOTHING",
            returning="event_id",
        )
    }
    rows = [row for row in rows if row.event.event_id in new_ids]
    if not rows:
        return set()
    received = adapt_dt(now)
    values = [
        (
            integration.integration_id,
            row.event.event_id,
            row.user.pk,
            row.user.enterprise_id,
            row.event.kind,
            row.event.tokens,
            adapt_dt(row.event.occurred_at),
            adapt_date(row.month),
            row.event.model,
            received,
        )
        for row in rows
    ]
    columns = (
        "integration_id, event_id, user_id, enterprise_id, kind, tokens, occurred_at, month,"
        " model, received_at"
    )
    _insert(UsageEvent, columns, values)
    return new_ids


def _classify(
    integration: IntegrationKey, rows: list[_Row], results: list[EventResult | None]
) -> None:
    """Events whose id is already stored: duplicate when the content matches, else conflict."""
    if not rows:
        return
    stored = {
        event_id: content
        for event_id, *content in UsageEvent.objects.filter(
            integration_id=integration.integration_id,
            event_id__in={row.event.event_id for row in rows},
        ).values_list("event_id", "user_id", "kind", "tokens", "occurred_at", "model")
    }
    for row in rows:
        e = row.event
        results[e.index] = _duplicate_or_conflict(e, stored.get(e.event_id) == list(row.content()))


def _upsert_rollups(rows: list[_Row]) -> tuple[dict[tuple[int, date], int], dict[int, int]]:
    """Add the new events to the roll-ups; return the totals after this batch.

    Returns ({(user_id, month): month inference}, {user_id: lifetime embedding}) for the
    overage flags. Keys are sorted so concurrent batches lock roll-up rows in one order.
    """
    monthly: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0, 0, 0])
    lifetime: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    per_model: dict[tuple[int, date, str], list[int]] = defaultdict(lambda: [0, 0])
    daily: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        e, user = row.event, row.user
        enterprise_id = cast(int, user.enterprise_id)  # rows are only made for enterprise users
        slot = 0 if e.kind == UsageKind.INFERENCE else 1
        monthly[(user.pk, row.month)][slot] += e.tokens
        monthly[(user.pk, row.month)][2] = enterprise_id
        lifetime[user.pk][slot] += e.tokens
        lifetime[user.pk][2] = enterprise_id
        per_model[(enterprise_id, row.month, e.model)][slot] += e.tokens
        day = e.occurred_at.astimezone(cast(Enterprise, user.enterprise).tzinfo).date()
        daily[(user.pk, day)][slot] += e.tokens
        daily[(user.pk, day)][2] = enterprise_id

    adapt_date = connection.ops.adapt_datefield_value
    month_totals = _insert(
        MonthlyUsage,
        "user_id, month, enterprise_id, inference_tokens, embedding_tokens",
        [(u, adapt_date(m), ent, i, emb) for (u, m), (i, emb, ent) in sorted(monthly.items())],
        on_conflict="(user_id, month) DO UPDATE SET enterprise_id = EXCLUDED.enterprise_id, {add}",
        returning="user_id, month, inference_tokens",
    )
    lifetime_totals = _insert(
        UsageTotal,
        "user_id, enterprise_id, inference_tokens, embedding_tokens",
        [(u, ent, i, emb) for u, (i, emb, ent) in sorted(lifetime.items())],
        on_conflict="(user_id) DO UPDATE SET enterprise_id = EXCLUDED.enterprise_id, {add}",
        returning="user_id, embedding_tokens",
    )
    _insert(
        EnterpriseMonthlyUsage,
        "enterprise_id, month, model, inference_tokens, embedding_tokens",
        [
            (ent, adapt_date(m), model, i, emb)
            for (ent, m, model), (i, emb) in sorted(per_model.items())
        ],
        on_conflict="(enterprise_id, month, model) DO UPDATE SET {add}",
    )
    _insert(
        DailyUsage,
        "user_id, day, enterprise_id, inference_tokens, embedding_tokens",
        [(u, adapt_date(d), ent, i, emb) for (u, d), (i, emb, ent) in sorted(daily.items())],
        on_conflict="(user_id, day) DO UPDATE SET enterprise_id = EXCLUDED.enterprise_id, {add}",
    )
    return (
        {(user_id, _as_date(month)): inference for user_id, month, inference in month_totals},
        dict(lifetime_totals),
    )


def _insert(
    model: type[models.Model],
    columns: str,
    rows: list[tuple],
    *,
    on_conflict: str = "",
    returning: str = "",
) -> list[tuple]:
    """One multi-row INSERT [... ON CONFLICT ...] [RETURNING] (PostgreSQL and SQLite alike).

    `{add}` in on_conflict expands to "tokens = current + incoming" for both token columns:
    the database adds, so concurrent batches never lose each other's increments.
    """
    table = connection.ops.quote_name(model._meta.db_table)
    add = ", ".join(
        f"{column} = {table}.{column} + EXCLUDED.{column}"
        for column in ("inference_tokens", "embedding_tokens")
    )
    group = "(" + ", ".join(["%s"] * len(rows[0])) + ")"
    # Only model metadata and placeholders are interpolated; every value is a parameter.
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES {', '.join([group] * len(rows))}"  # noqa: S608
        + (f" ON CONFLICT {on_conflict.format(add=add)}" if on_conflict else "")
        + (f" RETURNING {returning}" if returning else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for row in rows for value in row])
        return cursor.fetchall() if returning else []


def _as_date(value: date | str) -> date:
    # Raw cursors return DATE as a date on PostgreSQL and as text on SQLite.
    return value if isinstance(value, date) else date.fromisoformat(value)
