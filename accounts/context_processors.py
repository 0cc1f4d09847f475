"""Template context for the layout: the console navigation and who may see it."""

from __future__ import annotations

import functools

from django.conf import settings
from django.http import HttpRequest
from django.urls import get_script_prefix, reverse

from accounts.access import console_enterprise

# (url name, label) of the console pages, in navigation order.
CONSOLE_NAV = [
    ("console:dashboard", "Dashboard"),
    ("console:users", "Users"),
    ("console:usage_requests", "Requests"),
    ("console:token_statistics", "Token Statistics"),
    ("console:token_usage", "Token Usage"),
    ("console:monthly", "Monthly Data"),
    ("console:statements", "Statements"),
    ("console:exports", "Exports"),
    ("console:activity", "Activity Logs"),
    ("console:notifications", "Notifications"),
]


@functools.lru_cache(maxsize=8)
def _console_nav(script_prefix: str) -> list[tuple[str, str, str]]:
    """(url name, url, label): reversed once per process (and script prefix), not ten
    {% url %} tags on every console page."""
    return [(name, reverse(name), label) for name, label in CONSOLE_NAV]


def console(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    enterprise = console_enterprise(user)
    return {
        "console_enterprise": enterprise,
        # The Settings button shows only once MFA is set up *and* this session is verified.
        "can_open_console": enterprise is not None and user.is_verified(),
        "console_nav": _console_nav(get_script_prefix()),
        "sales_email": settings.SALES_EMAIL,
    }
