"""The edge: what every request meets before the application does.

Forwarded headers count only as the configured proxy wrote them, every response carries the
browser hardening headers (static files and early answers too), and the health check is
answered before sessions and authentication, which would need the database it reports on.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from accounts.views import healthz
from asksage_admin.core.views import readyz

Handler = Callable[[HttpRequest], HttpResponse]

HEALTH_PATHS = frozenset({"/healthz", "/readyz"})


def trusted_forwarded_value(raw: str, hops: int) -> str | None:
    """The value the `hops`-th proxy from us put in a comma-separated X-Forwarded-* header.

    Every proxy appends what it saw, so everything left of that entry came from the client
    (or an untrusted hop) and may be forged. None when no proxy is trusted or the header is
    shorter than the proxy chain (then no trusted proxy wrote it).
    """
    if hops <= 0:
        return None
    values = [value.strip() for value in raw.split(",")]
    if len(values) < hops:
        return None
    return values[-hops] or None


class TrustedProxyMiddleware:
    """X-Forwarded-Proto as TRUSTED_PROXY_COUNT allows, before anything asks is_secure().

    Django's SECURE_PROXY_SSL_HEADER believes the header from anyone; here it is dropped
    unless a trusted proxy wrote it, and cut down to that proxy's value when it did.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.META.pop("HTTP_X_FORWARDED_PROTO", None)
        if raw is not None:
            value = trusted_forwarded_value(raw, settings.TRUSTED_PROXY_COUNT)
            if value is not None:
                request.META["HTTP_X_FORWARDED_PROTO"] = value
        return self.get_response(request)


class PermissionsPolicyMiddleware:
    """Deny the browser features the console never uses, on every response."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response


class HealthCheckMiddleware:
    """Answer /healthz and /readyz here: a session cookie would otherwise make the session and auth
    middlewares query a database that is down, and the probe would see a 500, not a 503."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == "/healthz":
            return healthz(request)
        if request.path_info == "/readyz":
            return readyz(request)
        return self.get_response(request)
