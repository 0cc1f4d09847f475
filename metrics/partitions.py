"""The usage ledger's monthly partitions (PostgreSQL): create ahead, move strays, detach.

The ledger is PARTITION BY RANGE (month), `month` being the first day of the event's
enterprise-local month: one partition a month, named metrics_usageevent_yYYYYmMM, and a
DEFAULT partition so that an event is never refused for lack of a partition (an event may
claim any month since 2000). `create_usage_partitions` runs from the scheduler; rows the
DEFAULT partition caught for a month that then gets its own partition are moved there.
`detach_usage_partition` turns a closed month into a standalone table for archiving.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from asksage_admin.core.pg import append_only_sql
from metrics.models import DetachedUsageMonth

PARENT = "metrics_usageevent"
DEFAULT = f"{PARENT}_default"
COLUMNS = (
    "id, event_id, kind, tokens, occurred_at, month, model, received_at, enterprise_id,"
    " integration_id, user_id"
)


class PartitionError(Exception):
    """A request the ledger's partitions cannot honour (the command says why)."""


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def this_month() -> date:
    today = timezone.now().date()  # UTC: enterprise-local months differ by a day at most
    return today.replace(day=1)


def parse_month(text: str) -> date:
    try:
        year, month = (int(part) for part in text.split("-"))
        return date(year, month, 1)
    except ValueError:
        raise PartitionError(f"{text!r} is not a month: use YYYY-MM.") from None


def partition_name(month: date) -> str:
    return f"{PARENT}_y{month:%Y}m{month:%m}"


def is_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [PARENT])
        return cursor.fetchone()[0] == "p"


def attached() -> dict[date, str]:
    """The attached monthly partitions, by month (the DEFAULT one is not listed)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = %s::regclass
            """,
            [PARENT],
        )
        rows = cursor.fetchall()
    out = {}
    for name, bound in rows:
        if bound != "DEFAULT":
            # FOR VALUES FROM ('2026-12-01') TO ('2027-01-01')
            out[date.fromisoformat(bound.split("'")[1])] = name
    return out


def _default_months() -> dict[date, int]:
    """Months the DEFAULT partition holds rows of, with their counts."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT date_trunc('month', month)::date, count(*) FROM {DEFAULT} GROUP BY 1"  # noqa: S608
        )
        return dict(cursor.fetchall())


@dataclass
class EnsureReport:
    created: list[date] = field(default_factory=list)
    moved: dict[date, int] = field(default_factory=dict)
    # Rows of archived months the DEFAULT partition caught (late events): left there.
    stranded: dict[date, int] = field(default_factory=dict)


def ensure_partitions(months: Iterable[date]) -> EnsureReport:
    """Create the missing partitions of `months` and of every month the DEFAULT partition
    holds rows of, moving those rows into their partition. Idempotent.

    PostgreSQL refuses a new partition while DEFAULT holds rows of its range, so DEFAULT is
    detached for the move and attached again, in one transaction: ingest waits a moment,
    nothing is refused. The rows move unchanged (same id): a relocation, not an edit.
    """
    report = EnsureReport()
    with transaction.atomic(), connection.cursor() as cursor:
        # One run at a time; ingest keeps inserting meanwhile. Moved rows' foreign keys are
        # checked as they move: ALTER TABLE refuses a table with checks still pending.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [PARENT])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        have = attached()
        archived = set(DetachedUsageMonth.objects.values_list("month", flat=True))
        strays = _default_months()
        report.stranded = {m: n for m, n in strays.items() if m in archived}
        to_move = {m: n for m, n in strays.items() if m not in archived and m not in have}
        wanted = {m.replace(day=1) for m in months} - archived
        todo = sorted((wanted | to_move.keys()) - have.keys())
        if to_move:
            cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {DEFAULT}")
        for month in todo:
            cursor.execute(
                f"CREATE TABLE {partition_name(month)} PARTITION OF {PARENT}"
                " FOR VALUES FROM (%s) TO (%s)",
                [month, add_months(month, 1)],
            )
            report.created.append(month)
        if to_move:
            for month, count in sorted(to_move.items()):
                bounds = [month, add_months(month, 1)]
                # Detached, DEFAULT has no append-only trigger: the rows can leave it.
                cursor.execute(
                    f"INSERT INTO {PARENT} ({COLUMNS}) SELECT {COLUMNS} FROM {DEFAULT}"  # noqa: S608
                    " WHERE month >= %s AND month < %s",
                    bounds,
                )
                cursor.execute(f"DELETE FROM {DEFAULT} WHERE month >= %s AND month < %s", bounds)  # noqa: S608
                report.moved[month] = count
            cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {DEFAULT} DEFAULT")
    return report


@dataclass
class DetachReport:
    month: date
    table: str
    events: int
    already: bool = False


def detach(month: date) -> DetachReport:
    """Detach a closed month's partition into a standalone, still append-only table.

    Refused for a month that is not closed (this one or the last: late events still
    arrive), for a month whose rows sit in DEFAULT, and when the month's roll-ups disagree
    with its rows: from now on those roll-ups stand for the detached rows.
    """
    if month > add_months(this_month(), -2):
        last = add_months(this_month(), -2)
        raise PartitionError(
            f"{month:%Y-%m} is not closed: only months up to {last:%Y-%m} can be detached"
            " (the current and the previous month still receive events)."
        )
    done = DetachedUsageMonth.objects.filter(month=month).first()
    if done is not None:
        return DetachReport(month, done.table, done.events, already=True)
    table = attached().get(month)
    if table is None:
        if _default_months().get(month):
            raise PartitionError(
                f"The events of {month:%Y-%m} are in the default partition: run"
                " `manage.py create_usage_partitions` first, which moves them into their own."
            )
        raise PartitionError(f"{month:%Y-%m} has no partition and no events: nothing to detach.")
    with transaction.atomic(), connection.cursor() as cursor:
        # No insert into the month while it is checked and detached; writers already in
        # flight finish first (SHARE waits for them).
        cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE wants none pending
        drift = _month_drift(cursor, table, month)
        if drift:
            raise PartitionError(
                f"{drift} roll-up row(s) of {month:%Y-%m} differ from its events: run"
                " `manage.py reconcile_usage` and fix that before detaching."
            )
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
        events = cursor.fetchone()[0]
        cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {table}")
        # The cloned trigger left with the partition: the archive stays append-only.
        create, _drop = append_only_sql(table, truncate=False)
        cursor.execute(create)
        DetachedUsageMonth.objects.create(month=month, table=table, events=events)
    return DetachReport(month, table, events)


def _month_drift(cursor: CursorWrapper, table: str, month: date) -> int:
    """Roll-up rows of `month` (per user, per enterprise and model) unequal to its events."""
    sums = (
        "coalesce(sum(tokens) FILTER (WHERE kind = 'inference'), 0) AS inference,"
        " coalesce(sum(tokens) FILTER (WHERE kind = 'embedding'), 0) AS embedding"
    )
    cursor.execute(
        f"""
        SELECT count(*) FROM (SELECT user_id, {sums} FROM {table} GROUP BY user_id) l
        FULL JOIN (SELECT user_id, inference_tokens, embedding_tokens
                   FROM metrics_monthlyusage WHERE month = %s) r USING (user_id)
        WHERE coalesce(l.inference, 0) <> coalesce(r.inference_tokens, 0)
           OR coalesce(l.embedding, 0) <> coalesce(r.embedding_tokens, 0)
        """,  # noqa: S608
        [month],
    )
    drift = cursor.fetchone()[0]
    cursor.execute(
        f"""
        SELECT count(*) FROM (SELECT enterprise_id, model, {sums} FROM {table}
                              GROUP BY enterprise_id, model) l
        FULL JOIN (SELECT enterprise_id, model, inference_tokens, embedding_tokens
                   FROM metrics_enterprisemonthlyusage WHERE month = %s) r
             USING (enterprise_id, model)
        WHERE coalesce(l.inference, 0) <> coalesce(r.inference_tokens, 0)
           OR coalesce(l.embedding, 0) <> coalesce(r.embedding_tokens, 0)
        """,  # noqa: S608
        [month],
    )
    return drift + cursor.fetchone()[0]
