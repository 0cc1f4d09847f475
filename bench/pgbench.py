"""The database ceiling: pgbench running the very statements the application sends.

The scripts are generated from the application's own statement builders
(metrics.ingest_sql for a batch, metrics.quota for a quota check, the rate limiter's
UPSERT) with the values inlined, so the SQL cannot drift from the application's. The
application prepares these statements once per connection (asksage_admin.core.prepared),
so pgbench runs them prepared too (-M prepared). Only the values that must differ per
transaction come from pgbench variables, as parameters: the event ids (built in SQL from
the client id and a random number), the user for single events and quota checks, and the
rate-limit bucket (one per client).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.db import connection

from bench.report import percentile

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
ID_TOKEN = "PGBID"  # replaced by a per-transaction prefix
USER_TOKEN = "PGBUSER@"  # replaced by a random seeded user (single events)
INTEGRATION_MARK = 987_654_321_987  # replaced by the :integration variable


@dataclass
class PgbenchResult:
    tps: float
    latencies_ms: list[float]
    failed: int


def render(sql: str, params: object) -> str:
    """The statement exactly as Django's client-side-binding cursor sends it."""
    with connection.cursor() as cursor:
        return cursor.cursor.mogrify(sql, params)


def batch_script(integration_id: int, emails: list[str], size: int) -> str:
    from metrics import ingest_sql

    now = datetime.now(UTC)
    events = [
        (n, f"{ID_TOKEN}{n}", emails[n % len(emails)], ("embedding", "inference", "inference",
         "inference")[n % 4], 100 + n % 900, now, "bench-model")
        for n in range(size)
    ]  # fmt: skip
    # The integration is a parameter in the application's statement: one here too, so that
    # PostgreSQL may choose the same generic plan for it (a literal id of a brand-new
    # integration, which the statistics have not seen, gets a plan that scans its key rows).
    text = render(ingest_sql.BATCH_SQL, ingest_sql.batch_params(INTEGRATION_MARK, events, now))
    return f"\\set integration {integration_id}\n" + _script(
        text.replace(str(INTEGRATION_MARK), ":integration")
    )


def quota_script() -> str:
    from metrics import quota

    now = datetime.now(UTC)
    months = quota._candidate_months(now)
    params = [now, *months, USER_TOKEN + "scale-big.example"]  # now: temporary allocations
    return _script(render(quota._POSITION_SQL, params))


def rate_limit_statement() -> str:
    """The rate-limit UPSERT the API runs (in its own autocommit) before every request.

    One bucket per pgbench client, like one per integration key, with a limit no load
    reaches (the API in the benchmark runs with such a limit too)."""
    from asksage_admin.core.ratelimit import _upsert_sql

    now = 987654321.125  # a marker, replaced below
    params = {"key": "bench-pgbench-CLIENT", "burst": 1e9, "rate": 1e9 / 60, "now": now}
    sql = render(_upsert_sql("postgresql"), params).replace(
        "'bench-pgbench-CLIENT'", "('bench-pgbench-' || :client_id::text)"
    )
    # The bucket refills by elapsed time: "now" must move, as time.time() does in the app.
    return sql.replace(repr(now), "extract(epoch from clock_timestamp())")


def _script(sql: str) -> str:
    # One transaction's values: a random number for unique event ids, a random user. The API
    # runs the rate-limit statement first, in its own commit: so does the ceiling.
    sql = _per_transaction_values(sql)
    one_line = re.sub(r"\s+", " ", re.sub(r"--[^\n]*", "", sql)).strip()
    limit = re.sub(r"\s+", " ", rate_limit_statement()).strip()
    script = (
        "\\set r random(1, 9000000000000000)\n\\set uid random(1, 4999)\n"
        + limit
        + ";\n"
        + one_line
        + ";\n"
    )
    # -M prepared turns every ":name" into a parameter, inside quotes too: only ours may be left.
    names = set(re.findall(r"(?<![:\w]):([A-Za-z_]\w*)", script))
    if names - {"client_id", "r", "uid", "integration"}:
        raise ValueError(f"unexpected pgbench variables in the ceiling script: {names}")
    return script


def _per_transaction_values(sql: str) -> str:
    """The inlined statement with its per-transaction values as pgbench parameters.

    Event ids: the array literal '{PGBID0,PGBID1,...}' becomes the same ids built from the
    client id and a random number (b<client>-<r>-<n>). The user: 'PGBUSER@domain' (alone or
    in an array) becomes u<uid>@domain. Times: "23:22:39+00:00" is written "232239+0000"
    (the same instant to PostgreSQL), so that no ":<digits>" reads as a pgbench variable.
    """

    def ids(match: re.Match[str]) -> str:
        # An expression of two parameters, not a subquery: the planner treats it as it treats
        # the application's array parameter (an index condition where the event ids are),
        # and pgbench's limit of parameters per statement is not reached by 1,000 ids.
        prefix = "'b' || :client_id::text || '-' || :r::text || '-'"
        return f"replace({match.group(0).replace(ID_TOKEN, '#')}, '#', {prefix})"

    sql = re.sub(r"'\{" + ID_TOKEN + r"[^']*\}'", ids, sql)
    user = "'u' || :uid::text || '@"
    sql = re.sub(r"'\{" + USER_TOKEN + r"([^'}]*)\}'", lambda m: f"ARRAY[{user}{m[1]}']", sql)
    sql = re.sub(r"'" + USER_TOKEN + r"([^']*)'", lambda m: f"({user}{m[1]}')", sql)
    if ID_TOKEN in sql or USER_TOKEN in sql:
        raise ValueError("a per-transaction value the ceiling script cannot parameterise")
    return re.sub(r"(?<=\d):(?=\d)", "", sql)


def run(
    scripts: list[str],
    *,
    dsn: dict[str, str],
    clients: int,
    seconds: float,
    rate: float | None = None,
) -> PgbenchResult:
    """pgbench -M prepared (the application prepares these statements too).

    rate: transactions/s for all clients together (-R, open loop); pgbench then counts each
    transaction's latency from its scheduled start, so the wait behind a slow one shows.
    """
    with tempfile.TemporaryDirectory(prefix="pgbench-") as tmp:
        args = [PGBENCH, "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients),
                "-T", str(max(1, round(seconds))), "-l", "--log-prefix", f"{tmp}/log",
                "-h", dsn["host"], "-p", dsn["port"], "-U", dsn["user"], dsn["name"]]  # fmt: skip
        for n, script in enumerate(scripts):
            path = Path(tmp, f"script{n}.sql")
            path.write_text(script)
            args += ["-f", str(path)]
        if rate:
            args += ["-R", f"{rate:.3f}"]
        env = {**os.environ, "PGPASSWORD": dsn["password"]}
        # Our own fixed arguments; the only variable parts are numbers and generated paths.
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0 and "tps" not in done.stdout:
            raise SystemExit(f"pgbench failed:\n{done.stderr[-2000:]}")
        tps = float(re.search(r"tps = ([\d.]+)", done.stdout).group(1))
        failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
        latencies = [
            int(line.split()[2]) / 1000
            for log in Path(tmp).glob("log*")
            for line in log.read_text().splitlines()
            if line.split()[2].isdigit()
        ]
    return PgbenchResult(tps, latencies, int(failed.group(1)) if failed else 0)


def p50_p99(latencies_ms: list[float]) -> str:
    return f"{percentile(latencies_ms, 50):.1f} / {percentile(latencies_ms, 99):.1f}"
