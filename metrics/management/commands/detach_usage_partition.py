"""`manage.py detach_usage_partition YYYY-MM`: a closed month's ledger rows, set aside.

The month's partition becomes a standalone table (still append-only) to dump and drop;
its roll-ups stay, checked against its rows first, so the pages and the lifetime totals do
not change. reconcile_usage then covers the attached months. Idempotent.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from metrics import partitions


class Command(BaseCommand):
    help = "Detach a closed month of the usage ledger for archiving (PostgreSQL); idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("month", help="The month to detach, YYYY-MM.")

    def handle(self, *args: Any, month: str, **opts: Any) -> None:
        if not partitions.is_partitioned():
            raise CommandError("The usage ledger is partitioned on PostgreSQL only.")
        try:
            report = partitions.detach(partitions.parse_month(month))
        except partitions.PartitionError as exc:
            raise CommandError(str(exc)) from None
        if report.already:
            self.stdout.write(
                f"{report.month:%Y-%m} is already detached ({report.table},"
                f" {report.events:,} events): nothing to do."
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Detached {report.table}: {report.events:,} event(s) of {report.month:%Y-%m}."
                f" Archive it (pg_dump -t {report.table}) and drop it once the archive is"
                " verified; its roll-ups stay and reconcile_usage now covers the attached"
                " months."
            )
        )
