"""Mandatory MFA: admins, auditors and staff reach nothing until TOTP-verified."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import SESSION_KEY, logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django_otp import user_has_device

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
