"""Arrange helpers for browser tests: sign a Playwright page in, seed the demo enterprise."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command
from django.test import Client

from accounts.models import User
from tests import factories

DEMO_ADMIN = "admin@demo-corp.example"
DEMO_AUDITOR = "auditor@demo-corp.example"
DEMO_MEMBER = "ada.lovelace@demo-corp.example"

# Every console page (SPEC §7) that takes no argument; /org/users/<id>/ is added per test.
CONSOLE_PAGES = [
    "/org/",
    "/org/users/",
    "/org/users/add/",
    "/org/requests/",
    "/org/token-statistics/",
    "/org/token-usage/",
    "/org/monthly/",
    "/org/statements/",
    "/org/exports/",
    "/org/exports/verify/",
    "/org/activity/",
    "/org/notifications/",
]


def seed_demo() -> None:
    """Demo Corp: twelve people, two purchases, two years of usage with a spike, a log."""
    call_command("seed_demo", "--password", factories.PASSWORD, stdout=StringIO())


def use_client_session(page, live_server, client: Client) -> None:
    """Give the browser the session of a Django test client (signed in, maybe OTP-verified)."""
    session = client.cookies["sessionid"].value
    page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])


def sign_in(page, live_server, user: User, *, verified: bool = True) -> None:
    """Sign the page in as `user`; `verified` also completes the MFA step."""
    client = factories.verified_client(user) if verified else factories.signed_in_client(user)
    use_client_session(page, live_server, client)


def add_demo_members(count: int) -> list[User]:
    """More people with long, hyphenated emails: a full page of rows for layout checks."""
    enterprise = User.objects.get(email=DEMO_ADMIN).enterprise
    return [
        factories.make_user(
            f"firstname-{i:02d}.double-barrelled-surname@research-and-development.demo-corp.example",
            enterprise=enterprise,
            inference=200_000,
        )
        for i in range(count)
    ]
