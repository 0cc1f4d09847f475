"""`manage.py create_usage_partitions [--months-ahead N]`: the ledger's months, made ahead.

Run by the scheduler (daily is plenty). Idempotent: creates the partitions missing from
last month to N months ahead, and moves any rows the DEFAULT partition caught into a
partition of their own month (see metrics.partitions).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from metrics import partitions


class Command(BaseCommand):
    help = "Create the usage ledger's monthly partitions ahead (PostgreSQL); idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--months-ahead", type=int, default=3, help="Months after this one (default 3)."
        )
        parser.add_argument(
            "--from",
            dest="first",
            default=None,
            help="First month YYYY-MM (default: last month), e.g. before loading history.",
        )

    def handle(self, *args: Any, months_ahead: int, first: str | None, **opts: Any) -> None:
        if months_ahead < 0:
            raise CommandError("--months-ahead cannot be negative.")
        if not partitions.is_partitioned():
            self.stdout.write("The usage ledger is partitioned on PostgreSQL only: nothing to do.")
            return
        now = partitions.this_month()
        try:
            start = partitions.parse_month(first) if first else partitions.add_months(now, -1)
        except partitions.PartitionError as exc:
            raise CommandError(str(exc)) from None
        end = partitions.add_months(now, months_ahead)
        months = []
        month = start
        while month <= end:
            months.append(month)
            month = partitions.add_months(month, 1)
        report = partitions.ensure_partitions(months)
        for month in report.created:
            self.stdout.write(f"Created {partitions.partition_name(month)} ({month:%Y-%m}).")
        for month, count in sorted(report.moved.items()):
            self.stdout.write(
                f"Moved {count} event(s) of {month:%Y-%m} from the default partition into"
                f" {partitions.partition_name(month)}."
            )
        for month, count in sorted(report.stranded.items()):
            self.stdout.write(
                self.style.WARNING(
                    f"{count} late event(s) of the detached month {month:%Y-%m} are in the"
                    " default partition; reconcile_usage does not cover them."
                )
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Usage ledger partitions ready from {start:%Y-%m} to {end:%Y-%m}"
                f" ({len(report.created)} created, {sum(report.moved.values())} event(s) moved)."
            )
        )
