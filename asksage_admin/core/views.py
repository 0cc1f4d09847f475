"""The site's 500 handler: database faults outside a view still get a clear 503."""

from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse
from django.views import defaults

from asksage_admin.core.middleware import fault_response


def server_error(request: HttpRequest) -> HttpResponse:
    """A lost connection or deadlock in a middleware (session, sign-in state) is not a bug
    in the page: answer 503 + Retry-After like the views do. Anything else is a real 500."""
    exc = sys.exc_info()[1]
    if exc is not None and (response := fault_response(request, exc)) is not None:
        return response
    return defaults.server_error(request)
