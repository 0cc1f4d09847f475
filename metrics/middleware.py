"""Serve /api/ before the console's middleware.

The usage API authenticates with a Bearer key on every request: sessions, users, OTP, MFA,
CSRF and messages have nothing to do there, and each costs time (and, for sessions, a
query) on the hottest path. This middleware sits right after the request-context
middleware (request id and client address still reach the activity log) and calls the API
view directly; any other path, or an /api/ path that does not resolve, goes on as usual.

It also spares the API Django's per-request database health check (a `SELECT 1` round
trip before the first query) when the rate limiter runs: the limiter's UPSERT is then every
API request's first statement and replaces a dropped connection itself
(asksage_admin.core.ratelimit), so a connection the server closed still costs no error.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, get_resolver

from asksage_admin.core.middleware import fault_response

API_PREFIX = "/api/"
API_URLCONF = "metrics.api_urls"


class ApiDispatchMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.resolver = get_resolver(API_URLCONF)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        try:
            match = self.resolver.resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)
        request.resolver_match = match
        if settings.API_RATE_LIMIT_PER_MINUTE > 0:
            connection.health_check_done = True  # type: ignore[attr-defined]  # set by Django 4.1+
        try:
            return match.func(request, *match.args, **match.kwargs)
        except Exception as exc:
            # Served outside the view middleware chain, so database faults are answered
            # here as everywhere else: 503 + Retry-After (or the guard's refusal), not 500.
            response = fault_response(request, exc)
            if response is None:
                raise
            return response
