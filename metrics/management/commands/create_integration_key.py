"""`manage.py create_integration_key NAME [--rotate]`: create an API key and print it, once.

A new NAME creates the integration with its first key; `--rotate` adds another live key to
an existing integration (revoke the old one in the staff admin once the service switched).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from metrics.keys import create_integration_key


class Command(BaseCommand):
    help = "Create an integration API key. The key is printed once and stored only as a digest."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The integration, e.g. the service that will use it.")
        parser.add_argument(
            "--rotate",
            action="store_true",
            help="Add a key to an existing integration; its other keys stay live.",
        )

    def handle(self, *args: Any, name: str, rotate: bool, **options: Any) -> None:
        try:
            key, plaintext = create_integration_key(actor=None, name=name, rotate=rotate)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stderr.write(
            f"Created a key for integration {key.name!r}. Store it now: it is not shown again."
        )
        # The key alone on stdout, so scripts can capture it: KEY=$(manage.py create_...)
        self.stdout.write(plaintext)
