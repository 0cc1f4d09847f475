"""The usage ledger partitioned by month vs. one plain table: same rows, same statements, same run.

The partitioned side is the database's own ledger as the migration makes it, with the
seeded data (`manage.py seed_large`, ~2.4M events), its key table and roll-ups. The plain
side is a copy of all four in a schema of its own, the ledger as one plain table with the
same indexes, constraints and foreign keys. Then, alternating between the two so that a
busy moment of the shared machine hits both:
  ingest – pgbench running the application's own BATCH_SQL (1,000-event batches and single
           events, bench.pgbench) with search_path set to the side's schema: events/s;
  reads  – the statements that read the ledger: reconcile's per-user sums for one month
           and for the whole ledger, one user's month, the replay lookup of 1,000 ids.
Pages read the roll-ups only: the run checks that no page query touches the ledger.
The plain copy is dropped at the end; the events ingested into the real ledger stay (as
after `bench ingest`).
"""

from __future__ import annotations

import os
import time
from datetime import date

from django.db import connection

from bench import pgbench
from bench.report import median, table, verdict

PLAIN = "bench_ledger_plain"
SCHEMAS = {"plain": PLAIN, "partitioned": "public"}
ROLLUPS = ["metrics_monthlyusage", "metrics_usagetotal", "metrics_enterprisemonthlyusage"]
FOREIGN_KEYS = [
    ("enterprise_id", "accounts_enterprise"),
    ("integration_id", "metrics_integration"),
    ("user_id", "accounts_user"),
]
# Partitioned / plain: events/s at least this, read time at most 1 / this.
NOT_SLOWER = 0.9


def _build() -> float:
    """Copy the ledger (as a plain table), its key table and the roll-ups; seconds spent."""
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {PLAIN} CASCADE")
        cursor.execute(f"CREATE SCHEMA {PLAIN}")
        ledger = f"{PLAIN}.metrics_usageevent"
        cursor.execute(
            f"CREATE TABLE {ledger} (LIKE public.metrics_usageevent INCLUDING DEFAULTS"
            " INCLUDING IDENTITY INCLUDING CONSTRAINTS)"
        )
        cursor.execute(f"INSERT INTO {ledger} SELECT * FROM public.metrics_usageevent")  # noqa: S608
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, 'id'), max(id)) FROM {ledger}",  # noqa: S608
            [ledger],
        )
        # The partitioned ledger's indexes (its primary key has the month too) and foreign
        # keys (NOT VALID: the copied rows are known good, new rows are checked).
        cursor.execute(f"ALTER TABLE {ledger} ADD PRIMARY KEY (id)")
        cursor.execute(f"ALTER TABLE {ledger} ADD UNIQUE (integration_id, event_id, month)")
        cursor.execute(f"CREATE INDEX ON {ledger} (enterprise_id, user_id, month)")
        cursor.execute(f"CREATE INDEX ON {ledger} (user_id)")
        for column, target in FOREIGN_KEYS:
            cursor.execute(
                f"ALTER TABLE {ledger} ADD FOREIGN KEY ({column}) REFERENCES {target} (id)"
                " DEFERRABLE INITIALLY DEFERRED NOT VALID"
            )
        keys = f"{PLAIN}.metrics_usageeventkey"
        cursor.execute(f"CREATE TABLE {keys} (LIKE public.metrics_usageeventkey)")
        cursor.execute(f"INSERT INTO {keys} SELECT * FROM public.metrics_usageeventkey")  # noqa: S608
        cursor.execute(f"ALTER TABLE {keys} ADD PRIMARY KEY (integration_id, event_id)")
        cursor.execute(
            f"ALTER TABLE {keys} ADD FOREIGN KEY (integration_id) REFERENCES"
            " metrics_integration (id) DEFERRABLE INITIALLY DEFERRED NOT VALID"
        )
        for name in ROLLUPS:
            cursor.execute(
                f"CREATE TABLE {PLAIN}.{name} (LIKE public.{name} INCLUDING ALL);"
                f" INSERT INTO {PLAIN}.{name} SELECT * FROM public.{name}"  # noqa: S608
            )
            if name == "metrics_usagetotal":
                continue  # no id column
            # Copied ids: the identity continues after them.
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), max(id)) FROM {PLAIN}.{name}",  # noqa: S608
                [f"{PLAIN}.{name}"],
            )
        for name in ["metrics_usageevent", "metrics_usageeventkey", *ROLLUPS]:
            cursor.execute(f"ANALYZE {PLAIN}.{name}")
            cursor.execute(f"ANALYZE public.{name}")
    return time.monotonic() - started


def _grant(schema: str, role: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"GRANT USAGE ON SCHEMA {schema} TO {role};"
            f" GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {role};"
            f" GRANT ALL ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"
        )


def _pgbench(
    schema: str, scripts: list[str], dsn: dict[str, str], clients: int, seconds: float
) -> pgbench.PgbenchResult:
    os.environ["PGOPTIONS"] = f"-c search_path={schema},public"
    try:
        return pgbench.run(scripts, dsn=dsn, clients=clients, seconds=seconds)
    finally:
        del os.environ["PGOPTIONS"]


def _timed_sql(schema: str, sql: str, params: list, repeat: int) -> float:
    """Median ms of one statement over TCP, in the schema (after one warm-up run, unless
    it is run once: the whole-ledger scan takes seconds and warms itself)."""
    timings = []
    with connection.cursor() as cursor:
        cursor.execute(f"SET search_path = {schema}, public")
        try:
            for n in range(repeat + 1 if repeat > 1 else 1):
                started = time.perf_counter()
                cursor.execute(sql, params)
                cursor.fetchall()
                if n or repeat == 1:
                    timings.append(time.perf_counter() - started)
        finally:
            cursor.execute("RESET search_path")
    return median(timings) * 1000


def _pages_touching_the_ledger() -> tuple[int, int]:
    """(queries of all measured pages, those that read metrics_usageevent)."""
    from django.test.utils import CaptureQueriesContext

    from bench.pages import PAGES, _resolve
    from bench.scale import BIG, admin_client

    client, _ = admin_client(BIG)
    total = touching = 0
    for _label, raw_path in PAGES:
        path = _resolve(raw_path, client)
        with CaptureQueriesContext(connection) as captured:
            client.get(path)
        total += len(captured.captured_queries)
        touching += sum("metrics_usageevent" in q["sql"] for q in captured.captured_queries)
    return total, touching


def run_partitions(*, seconds: float, clients: int, rounds: int = 2) -> None:
    from bench.ingest import BENCH_ROLE, _parse_dsn, bench_role
    from metrics.partitions import is_partitioned

    if not is_partitioned():
        raise SystemExit("The ledger is not partitioned: run `manage.py migrate` first.")
    built = _build()
    dsn, auth_note = bench_role(_parse_dsn(os.environ["DATABASE_URL"]))
    _grant(PLAIN, BENCH_ROLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {PLAIN}.metrics_usageevent")  # noqa: S608
        events = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'metrics_usageevent'::regclass"
        )
        parts = cursor.fetchone()[0]
    print(
        f"Ledger: {events:,} events, partitioned into {parts} partitions (incl. DEFAULT); plain"
        f" copy built in {built:.0f} s; pgbench over {auth_note}\n",
        flush=True,
    )
    try:
        _ingest(dsn, clients, seconds, rounds, events)
        _reads()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {PLAIN} CASCADE")
    total, touching = _pages_touching_the_ledger()
    print(
        f"Pages: {touching} of the {total} queries of the measured console pages read the"
        " ledger (they read the roll-ups), so the ledger's layout cannot slow them down."
    )


def _ingest(dsn: dict[str, str], clients: int, seconds: float, rounds: int, events: int) -> None:
    import uuid

    from accounts.models import User
    from bench.ingest import _windows as windows
    from bench.scale import BIG as big
    from metrics.models import Integration

    emails = list(
        User.objects.filter(enterprise__slug=big, status=User.Status.PAID)
        .order_by("id")
        .values_list("email", flat=True)[:5000]
    )
    integration = Integration.objects.create(name=f"bench-partitions-{uuid.uuid4().hex[:8]}")
    single_user = f"{pgbench.USER_TOKEN}{big}.example"
    batches = [pgbench.batch_script(integration.pk, w, 1000) for w in windows(emails, 1000)]
    shapes = [
        ("1,000-event batch", 1000, batches),
        ("single event", 1, [pgbench.batch_script(integration.pk, [single_user], 1)]),
    ]
    rows = []
    for label, size, scripts in shapes:
        rates: dict[str, list[float]] = {v: [] for v in SCHEMAS}
        p99: dict[str, list[float]] = {v: [] for v in SCHEMAS}
        for _ in range(rounds):
            for variant, schema in SCHEMAS.items():
                result = _pgbench(schema, scripts, dsn, clients, seconds)
                rates[variant].append(result.tps * size)
                p99[variant] += result.latencies_ms
        plain, part = median(rates["plain"]), median(rates["partitioned"])
        ratio = part / plain if plain else 0.0
        rows.append(
            [label, f"{plain:,.0f}", f"{part:,.0f}", f"{ratio:.2f}",
             f"{pgbench.p50_p99(p99['plain'])}", f"{pgbench.p50_p99(p99['partitioned'])}",
             verdict(ratio >= NOT_SLOWER)]
        )  # fmt: skip
    table(
        f"Ingest into a {events:,}-event ledger: pgbench running BATCH_SQL, {clients} clients,"
        f" {rounds} x {seconds:.0f} s per variant, alternating; target partitioned/plain"
        f" >= {NOT_SLOWER}",
        ["shape", "plain ev/s", "partitioned ev/s", "ratio", "plain p50/p99 ms",
         "part. p50/p99 ms", "target"],
        rows,
    )  # fmt: skip


def _reads() -> None:
    from accounts.models import Enterprise, User
    from bench.scale import BIG as big
    from metrics import ingest_sql
    from metrics.partitions import add_months, this_month

    enterprise = Enterprise.objects.get(slug=big)
    user = User.objects.filter(enterprise=enterprise, status=User.Status.PAID).order_by("id")[10]
    month: date = add_months(this_month(), -3)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT integration_id, array_agg(event_id) FROM (SELECT integration_id, event_id"
            " FROM public.metrics_usageevent WHERE month = %s LIMIT 1000) s GROUP BY 1",
            [month],
        )
        integration_id, ids = cursor.fetchone()
    sums = (
        "coalesce(sum(tokens) FILTER (WHERE kind = 'inference'), 0),"
        " coalesce(sum(tokens) FILTER (WHERE kind = 'embedding'), 0)"
    )
    statements: list[tuple[str, str, list, int]] = [
        (
            f"reconcile, one month ({month:%Y-%m})",
            f"SELECT user_id, {sums} FROM metrics_usageevent WHERE month = %s"  # noqa: S608
            " GROUP BY user_id ORDER BY user_id",
            [month],
            5,
        ),
        (
            "a user's month",
            f"SELECT {sums} FROM metrics_usageevent"  # noqa: S608
            " WHERE enterprise_id = %s AND user_id = %s AND month = %s",
            [enterprise.pk, user.pk, month],
            50,
        ),
        (
            "replay lookup, 1,000 ids (STORED_SQL)",
            ingest_sql.STORED_SQL,
            [integration_id, ids],
            20,
        ),
        (
            "reconcile, whole ledger (user, month)",
            f"SELECT user_id, month, {sums} FROM metrics_usageevent"  # noqa: S608
            " GROUP BY user_id, month ORDER BY user_id, month",
            [],
            1,
        ),
    ]
    rows = []
    for label, sql, params, repeat in statements:
        ms: dict[str, list[float]] = {v: [] for v in SCHEMAS}
        for _ in range(2):
            for variant, schema in SCHEMAS.items():
                ms[variant].append(_timed_sql(schema, sql, params, repeat))
        plain, part = min(ms["plain"]), min(ms["partitioned"])
        ratio = part / plain if plain else 0.0
        rows.append(
            [label, f"{plain:.2f}", f"{part:.2f}", f"{ratio:.2f}", verdict(ratio <= 1 / NOT_SLOWER)]
        )
    table(
        "Ledger reads over TCP, median ms (best of two alternating series); target"
        f" partitioned/plain <= {1 / NOT_SLOWER:.2f}",
        ["statement", "plain ms", "partitioned ms", "ratio", "target"],
        rows,
    )
