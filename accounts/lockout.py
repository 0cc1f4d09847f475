"""Sign-in lockout policy for django-axes: who is counted, for how long, and what they see.

Failures are counted per (email, client IP): a locked pair says nothing about other
addresses or other networks, and the page reads the same whether or not the email exists.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from axes.models import AccessFailureLog  # type: ignore[import-untyped]  # no py.typed
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from asksage_admin.core.client_ip import client_ip as _client_ip

# Cool-offs double per lockout of the same pair within a day, up to this ceiling.
MAX_COOL_OFF = timedelta(hours=24)
PROGRESSION_WINDOW = timedelta(hours=24)


def username_for_lockout(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The email as the sign-in form normalises it, so Ann@X and ann@x share one counter."""
    raw = (credentials or {}).get("username") or request.POST.get("username", "")
    return "".join(ch for ch in str(raw) if ch.isprintable()).strip().lower()[:254]


def client_ip(request: HttpRequest) -> str | None:
    return _client_ip(request)


def cool_off(request: HttpRequest | None) -> timedelta:
    """Base cool-off × 2^(earlier lockouts of this (email, IP) pair in the last day)."""
    base = timedelta(seconds=settings.SIGN_IN_COOL_OFF_SECONDS)
    if request is None:
        return base
    username = username_for_lockout(request, getattr(request, "axes_credentials", None))
    failures = AccessFailureLog.objects.filter(
        username=username,
        ip_address=getattr(request, "axes_ip_address", None) or client_ip(request),
        attempt_time__gte=timezone.now() - PROGRESSION_WINDOW,
    ).count()
    earlier_lockouts = max(0, failures // settings.AXES_FAILURE_LIMIT - 1)
    return min(base * 2 ** min(earlier_lockouts, 16), MAX_COOL_OFF)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any = None
) -> HttpResponse:
    """429 with the sign-in page and the reason; identical for unknown and known emails."""
    minutes = max(1, round(cool_off(request).total_seconds() / 60))
    ctx = {
        "locked_minutes": minutes,
        "next": request.POST.get("next", "") or request.GET.get("next", ""),
    }
    return render(request, "accounts/login_locked.html", ctx, status=429)
