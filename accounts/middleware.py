"""Mandatory MFA: admins, auditors and staff reach nothing until TOTP-verified."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django_otp import user_has_device

from asksage_admin.core.audit import Action, log_activity
from asksage_admin.core.errors import json_error

SIGNED_IN_AT_KEY = "signed_in_at"
LAST_SEEN_KEY = "last_seen_at"
# The last-seen stamp is written at most this often: one session write a minute, not per request.
_LAST_SEEN_RESOLUTION = 60

# Paths an unverified privileged user may still reach: the MFA steps themselves,
# sign-out, static files, the health check and the API (which uses keys, not sessions).
_OPEN_PREFIXES = (
    "/mfa/setup/",
    "/mfa/verify/",
    "/accounts/logout/",
    "/static/",
    "/healthz",
    "/api/",
)


def mfa_redirect_for(request: HttpRequest) -> HttpResponse | None:
    """Where an authenticated user must go before anything else, or None if nowhere."""
    user = request.user
    if not user.is_authenticated or user.is_verified():
        return None
    has_device = user_has_device(user, confirmed=True)
    if not (user.needs_mfa or has_device):
        return None
    target = "mfa:verify" if has_device else "mfa:setup"
    query = urlencode({"next": request.get_full_path()}) if request.method == "GET" else ""
    return redirect(reverse(target) + (f"?{query}" if query else ""))


class MFARequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        banned = user.is_authenticated and user.is_banned
        # The auth backend already refuses to load a banned (or deactivated) user from the
        # session, which leaves request.user anonymous but the session alive: lifting the
        # ban would revive it. End it for good, at once, not when it expires.
        if banned or (not user.is_authenticated and SESSION_KEY in request.session):
            logout(request)  # the request goes on as anonymous: protected pages ask to sign in
            return self.get_response(request)
        if not request.path.startswith(_OPEN_PREFIXES):
            response = mfa_redirect_for(request)
            if response is not None:
                return response
        return self.get_response(request)


def stamp_sign_in(request: HttpRequest) -> None:
    """Start the session clocks (called on every sign-in, see accounts.apps)."""
    now = timezone.now().timestamp()
    request.session[SIGNED_IN_AT_KEY] = now
    request.session[LAST_SEEN_KEY] = now


class SessionLimitsMiddleware:
    """Console users (admins, auditors, staff) are signed out after CONSOLE_SESSION_IDLE_SECONDS
    without a request, and CONSOLE_SESSION_MAX_SECONDS after sign-in whatever they do: a
    console left open on a shared machine must not stay able to move tokens."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if not (user.is_authenticated and user.needs_mfa):
            return self.get_response(request)
        session, now = request.session, timezone.now().timestamp()
        started = session.setdefault(SIGNED_IN_AT_KEY, now)
        last_seen = session.get(LAST_SEEN_KEY, now)
        if now - started > settings.CONSOLE_SESSION_MAX_SECONDS:
            return self._end(request, "absolute limit", "Your session reached its time limit.")
        if now - last_seen > settings.CONSOLE_SESSION_IDLE_SECONDS:
            return self._end(request, "idle timeout", "You were signed out after inactivity.")
        if now - last_seen >= _LAST_SEEN_RESOLUTION or LAST_SEEN_KEY not in session:
            session[LAST_SEEN_KEY] = now
        return self.get_response(request)

    def _end(self, request: HttpRequest, reason: str, message: str) -> HttpResponse:
        user = request.user if request.user.is_authenticated else None
        log_activity(actor=user, action=Action.SIGN_OUT, target=f"session {reason}")
        logout(request)
        if request.content_type == "application/json":  # the inline editor: say why, in JSON
            return json_error(401, "session_expired", f"{message} Reload the page to sign in.")
        messages.info(request, f"{message} Sign in again to continue.")
        return redirect_to_login(request.get_full_path() if request.method == "GET" else "/")
