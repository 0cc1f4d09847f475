"""End temporary allocations whose date has passed (run by the scheduler, e.g. hourly)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tokens.temporary import expire_due


class Command(BaseCommand):
    help = (
        "Mark temporary allocations past their end date (in their enterprise's time zone) as "
        "ended and write one activity-log row each. Safe to run as often as you like: the "
        "quota and the pool already stopped counting them at their end."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--now",
            type=dt.datetime.fromisoformat,
            help="Pretend it is this instant (ISO 8601 with offset); for tests and catch-up.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        outcome = expire_due(options["now"])
        self.stdout.write(
            f"Ended {outcome.ended} temporary allocation(s) in {outcome.enterprises} "
            "organization(s)."
        )
