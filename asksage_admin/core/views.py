"""/metrics for Prometheus (off unless enabled, then only for a token or an allowed IP),
/readyz, and the site's 500 handler (database faults outside a view still get a 503)."""

from __future__ import annotations

import hmac
import sys

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.utils.cache import patch_cache_control
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from asksage_admin.core.client_ip import client_ip
from asksage_admin.core.middleware import fault_response
from asksage_admin.core.telemetry import exposition


def _allowed(request: HttpRequest) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    # compare_digest: the token is a secret; a timing difference must not leak it.
    if (
        settings.METRICS_TOKEN
        and scheme == "Bearer"
        and hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode())
    ):
        return True
    return client_ip(request) in settings.METRICS_ALLOWED_IPS


@never_cache
@require_GET
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_ENABLED:
        raise Http404("Metrics are not enabled.")
    if not _allowed(request):
        response = HttpResponse("A metrics token or an allowed address is required.\n", status=401)
        response["Content-Type"] = "text/plain; charset=utf-8"
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)


_migrated = False  # once every migration is applied, it stays applied for this process


def _pending_migrations() -> int:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


@never_cache
@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """Ready for traffic: the database answers and every migration is applied.

    /healthz says the process lives; this one tells a load balancer (or a deploy script
    waiting after `migrate`) whether to send requests here yet.
    """
    global _migrated
    try:
        pending = 0 if _migrated else _pending_migrations()
    except Exception as exc:  # any database failure means "not ready"
        return JsonResponse({"status": "error", "database": type(exc).__name__}, status=503)
    if pending:
        return JsonResponse({"status": "migrating", "pending_migrations": pending}, status=503)
    _migrated = True
    return JsonResponse({"status": "ok", "database": "ok", "migrations": "applied"})


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers and crawlers ask for /favicon.ico whatever the page says: send them the SVG.

    A temporary redirect, cached for a day: in production the static URL carries a content
    hash that changes with the file.
    """
    response = redirect(static("img/favicon.svg"))
    patch_cache_control(response, public=True, max_age=24 * 3600)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """A lost connection or deadlock in a middleware (session, sign-in state) is not a bug
    in the page: answer 503 + Retry-After like the views do. Anything else is a real 500."""
    exc = sys.exc_info()[1]
    if exc is not None and (response := fault_response(request, exc)) is not None:
        return response
    return defaults.server_error(request)
