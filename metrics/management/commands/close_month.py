"""`manage.py close_month`: freeze a statement for every enterprise month that has ended.

Safe to run at any time, late or twice: months that already have a statement are skipped,
and a month is only closed once it has ended in the enterprise's own time zone. Schedule it
daily (docs/operations.md); the first run after a month ends closes it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.models import Enterprise
from metrics.statements import close_due_months


class Command(BaseCommand):
    help = "Freeze the monthly statement of every month that has ended (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--enterprise", help="Only this enterprise (its slug).")
        parser.add_argument(
            "--now",
            help="Pretend it is this ISO 8601 instant (to replay a missed close); default: now.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = None
        if options["now"]:
            try:
                now = dt.datetime.fromisoformat(options["now"])
            except ValueError as exc:
                raise CommandError(f"--now: {exc}") from exc
            if now.tzinfo is None:
                raise CommandError("--now needs a time zone offset, e.g. 2026-11-01T00:00:00Z.")
            if now > timezone.now():
                raise CommandError("--now is in the future: a month is closed once it has ended.")
        enterprises = None
        if options["enterprise"]:
            enterprises = list(Enterprise.objects.filter(slug=options["enterprise"]))
            if not enterprises:
                raise CommandError(f"No enterprise has the slug {options['enterprise']!r}.")
        closed = close_due_months(now=now, enterprises=enterprises)
        for statement in closed:
            self.stdout.write(
                f"Closed {statement.enterprise.slug} {statement.period}: sha256 {statement.sha256}"
                + (
                    f" ({statement.adjustment_lines} adjustment line(s))"
                    if statement.adjustment_lines
                    else ""
                )
            )
        self.stdout.write(self.style.SUCCESS(f"{len(closed)} statement(s) closed."))
