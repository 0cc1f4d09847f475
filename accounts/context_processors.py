"""Template context for the layout: the console navigation and who may see it."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

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


def console(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    enterprise = console_enterprise(user)
    return {
        "console_enterprise": enterprise,
        # The Settings button shows only once MFA is set up *and* this session is verified.
        "can_open_console": enterprise is not None and user.is_verified(),
        "console_nav": CONSOLE_NAV,
        "sales_email": settings.SALES_EMAIL,
    }
