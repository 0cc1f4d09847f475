"""Request context for the activity log: client IP and a request id."""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def request_meta_restored(meta: RequestMeta | None) -> Iterator[None]:
    """Run with `meta` as the current request's: for work done after the view returned
    (a streamed export logs itself when its last byte is sent, outside the middleware)."""
    token = _current.set(meta)
    try:
        yield
    finally:
        _current.reset(token)


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


class DatabaseFaultMiddleware:
    """Database faults a view could not handle become clear answers, never a 500.

    - `DatabaseBusy`, a deadlock/serialization failure or a lost connection: 503 with
      Retry-After; nothing was written (the transaction rolled back).
    - A PostgreSQL guard's refusal (pool over-assigned, Paid user under the minimum,
      append-only table): the service's own message, 409/422.
    JSON for the API and JSON requests; a small page (that needs no database) otherwise.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        return fault_response(request, exc)


def fault_response(request: HttpRequest, exc: BaseException) -> HttpResponse | None:
    """The clear answer to a database fault, or None when `exc` is not one."""
    from django.db import Error, IntegrityError

    from asksage_admin.core.errors import guard_refusal, json_error, refusal_response
    from asksage_admin.core.retry import DatabaseBusy, busy_from

    if isinstance(exc, IntegrityError) and (refusal := guard_refusal(exc)) is not None:
        if _wants_json(request):
            return refusal_response(refusal)
        return _page(request, refusal.status, "Nothing was saved", refusal.message, "")
    if isinstance(exc, Error) and not isinstance(exc, IntegrityError):
        exc = busy_from(exc) or exc
    if not isinstance(exc, DatabaseBusy):
        return None
    response: HttpResponse
    if _wants_json(request):
        response = json_error(
            503, "unavailable", f"{exc.reason} Nothing was saved; try again shortly."
        )
    else:
        response = _page(
            request,
            503,
            "Please try again",
            f"{exc.reason} Nothing was saved.",
            "Wait a moment and send it again; your change was not applied.",
        )
    response["Retry-After"] = str(exc.retry_after)
    return response


def _wants_json(request: HttpRequest) -> bool:
    return (
        request.path.startswith("/api/")
        or request.content_type == "application/json"
        or "application/json" in request.headers.get("Accept", "")
    )


def _page(request: HttpRequest, status: int, title: str, message: str, advice: str) -> HttpResponse:
    from django.template.loader import render_to_string

    back = request.META.get("HTTP_REFERER") or request.path
    html = render_to_string(
        "db_fault.html",
        {"title": title, "message": message, "advice": advice, "back": back},
    )
    return HttpResponse(html, status=status)
