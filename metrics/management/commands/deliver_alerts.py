"""`manage.py deliver_alerts [--once] [--interval S]`: the usage-alert email worker.

Runs next to gunicorn (one process is enough; more are safe, rows are claimed with SKIP
LOCKED). It polls the outbox (metrics_usagealert rows not sent yet) every few seconds,
sends what is due and leaves failures for a later attempt with back-off. SIGTERM / SIGINT
finish the current email and stop. `--once` sends what is due now and exits (cron, tests).
"""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections

from metrics.alerts import Delivery, deliver_due


class Command(BaseCommand):
    help = "Send usage-alert emails from the outbox; retries while the mail server is down."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Send what is due, then exit.")
        parser.add_argument(
            "--interval", type=float, default=5.0, help="Seconds between polls (default 5)."
        )

    def handle(self, *args: Any, once: bool, interval: float, **options: Any) -> None:
        if once:
            done = deliver_due(limit=10_000)
            self.stdout.write(f"sent {done.sent}, failed {done.failed}")
            return
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stderr.write(f"deliver_alerts: polling every {interval:g} s")
        while not stopping:
            close_old_connections()  # a restarted database must not kill the worker
            report: Delivery | None
            try:
                report = deliver_due()
            except DatabaseError as exc:
                self.stderr.write(f"deliver_alerts: database error, retrying: {exc}")
                report = None
            if report and (report.sent or report.failed):
                self.stdout.write(f"sent {report.sent}, failed {report.failed}")
            if report is None or report.sent + report.failed < 100:
                for _ in range(max(1, int(interval * 10))):
                    if stopping:
                        break
                    time.sleep(0.1)
        self.stderr.write("deliver_alerts: stopped")
