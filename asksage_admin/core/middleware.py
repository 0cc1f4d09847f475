"""Request context for the activity log: client IP and a request id."""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse

from asksage_admin.core.client_ip import client_ip


@dataclass(frozen=True)
class RequestMeta:
    ip_address: str | None
    request_id: str


_current: contextvars.ContextVar[RequestMeta | None] = contextvars.ContextVar(
    "request_meta", default=None
)
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def current_request_meta() -> RequestMeta | None:
    """What the activity log records as 'from where' for the request being served."""
    return _current.get()


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # A proxy's X-Request-ID is kept when it looks like one, so logs can be joined up.
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        # X-Forwarded-For is client-controlled: only trusted proxy hops count (client_ip).
        meta = RequestMeta(ip_address=client_ip(request), request_id=request_id)
        request.request_id = request_id  # type: ignore[attr-defined]  # not declared on HttpRequest
        token = _current.set(meta)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response["X-Request-ID"] = request_id
        return response
