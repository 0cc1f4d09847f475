"""`python -m bench`: figures for the console and the ingest path at scale (not a test).

Against PostgreSQL (DATABASE_URL) with the `manage.py seed_large` data set (created when
missing). Prints one table per section:
  pages   – over HTTP through gunicorn (production settings, PostgreSQL as a password role over
            TCP): p50/p95, the page's SQL run alone, Python time (page - SQL), query count,
            and the in-process p50
  exports – rows/s and the gunicorn worker's extra peak RSS for each CSV export
  ingest  – events/s through gunicorn (gunicorn.conf.py, PRODUCTION=true, PostgreSQL over TCP
            with a password) for single events, 1,000-event batches and quota checks, against
            pgbench running the same statements in the same run: ratio, p50/p99, errors;
            then single events open-loop (fixed arrival rate) at half the closed-loop maximum:
            p50/p95/p99/max from the scheduled send time, and where one request's time goes
  partitions – the usage ledger partitioned by month vs. a plain copy of it (~2.4M events
            each, same run): ingest events/s (pgbench, BATCH_SQL) and ledger reads, ratios
  floor   – in process: a console page's Python time layer by layer (middleware, sign-in,
            layout, the page), with function calls a request (steady across machine speeds)
  chaos   – not a benchmark: ingest and allocation saves while app connections are killed;
            checks nothing acknowledged was lost or doubled (bench/chaos.py). Run it alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asksage_admin.settings")
os.environ.setdefault("DEBUG", "false")
# The benchmark signs its admins' sessions; gunicorn is started with the same key.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", default=["pages", "exports", "ingest"])
    parser.add_argument("--requests", type=int, default=40, help="Timed requests per page.")
    parser.add_argument("--seconds", type=float, default=10.0, help="Duration of each ingest run.")
    parser.add_argument("--clients", type=int, default=4, help="Concurrent ingest clients.")
    parser.add_argument(
        "--open-seconds",
        type=float,
        default=30.0,
        help="ingest: open-loop single events at half the maximum rate for this long (0: skip).",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="gunicorn workers (default: gunicorn.conf.py)."
    )
    parser.add_argument(
        "--app-dir",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="Source tree gunicorn serves for pages/exports (e.g. a worktree of an older commit).",
    )
    parser.add_argument("--port", type=int, default=0, help="gunicorn port (0: a free one).")
    parser.add_argument("--kill-every", type=float, default=0.5, help="chaos: seconds per kill.")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        print(
            "The benchmark runs against PostgreSQL: set DATABASE_URL=postgres://...",
            file=sys.stderr,
        )
        return 2

    if args.sections == ["chaos"]:
        from bench.chaos import run_chaos

        ok = run_chaos(seconds=args.seconds, clients=args.clients, kill_every=args.kill_every)
        return 0 if ok else 1

    from bench import ingest, pages, scale

    scale.ensure_data()
    print(
        f"Machine: {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}"
    )
    print(f"PostgreSQL: {scale.server_version()} · data: {scale.describe()}\n")
    if "pages" in args.sections:
        pages.run_pages(requests=args.requests, app_dir=args.app_dir, port=args.port)
    if "exports" in args.sections:
        pages.run_exports(app_dir=args.app_dir, port=args.port)
    if "floor" in args.sections:
        from bench.floor import run_floor

        run_floor(requests=args.requests)
    if "partitions" in args.sections:
        from bench.partitions import run_partitions

        run_partitions(seconds=args.seconds, clients=args.clients)
    if "ingest" in args.sections:
        ingest.run_ingest(
            seconds=args.seconds,
            clients=args.clients,
            workers=args.workers,
            open_seconds=args.open_seconds,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
