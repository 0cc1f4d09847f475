"""An optional read replica for report pages and exports, with read-your-writes.

Only views marked `@replica_reads` read from the `replica` alias (DATABASE_REPLICA_URL);
every write, every read inside a transaction and every read of a session or sign-in table
goes to the primary. A replica lags: after a request that wrote, the writer's session reads
from the primary for REPLICA_STICKY_SECONDS, so the page an admin opens right after saving an
allocation never shows the allocation from before the save.
"""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse

REPLICA = "replica"
# Session key: until when (Unix time) this session reads from the primary.
PRIMARY_UNTIL = "_primary_reads_until"
# State no report needs and a lagging copy would corrupt: a session or an MFA device read
# from a replica could sign someone out or replay a used code.
PRIMARY_ONLY_APPS = frozenset({"sessions", "axes", "otp_totp", "otp_static", "django_otp"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class RequestReads:
    """Per request: may reads go to the replica, must they not, did the request write."""

    sticky: bool = False
    replica: bool = False
    wrote: bool = False


_reads: contextvars.ContextVar[RequestReads | None] = contextvars.ContextVar(
    "request_reads", default=None
)


def replica_configured() -> bool:
    return REPLICA in connections.settings


def replica_reads(view: F) -> F:
    """Mark a read-only report view: its queries (and its streamed body) may use the replica.

    Put it below the access decorator, so who may see the page is judged on the primary.
    """

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        state = _reads.get()
        if state is None or state.sticky or not replica_configured():
            return view(request, *args, **kwargs)
        state.replica = True
        try:
            response = view(request, *args, **kwargs)
        finally:
            state.replica = False
        if getattr(response, "streaming", False):
            # An export's rows are read while the response streams, after the view returned.
            response.streaming_content = _on_replica(state, response.streaming_content)
        return response

    wrapped.replica_reads = True  # type: ignore[attr-defined]  # read by tests
    return wrapped  # type: ignore[return-value]


def _on_replica(state: RequestReads, chunks: Iterable[Any]) -> Iterator[Any]:
    # Streaming runs after the middleware has left: the request's state is set again around
    # each chunk (never across a yield, which would leak it into the server's context).
    iterator = iter(chunks)
    while True:
        token = _reads.set(state)
        state.replica = True
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        finally:
            state.replica = False
            _reads.reset(token)
        yield chunk


class ReplicaRouter:
    """Reads of a `@replica_reads` view go to the replica; everything else to the primary."""

    def db_for_read(self, model: type, **hints: Any) -> str:
        state = _reads.get()
        if (
            state is None
            or not state.replica
            or model._meta.app_label in PRIMARY_ONLY_APPS  # type: ignore[attr-defined]
            # A read inside a transaction feeds a write (a lock, a chain head): primary.
            or connections[DEFAULT_DB_ALIAS].in_atomic_block
            or not replica_configured()
        ):
            # Explicit, not None: Django would otherwise follow a replica-loaded instance.
            return DEFAULT_DB_ALIAS
        return REPLICA

    def db_for_write(self, model: type, **hints: Any) -> str:
        state = _reads.get()
        if state is not None:
            state.wrote = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # the same rows on both aliases

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS  # the replica follows the primary's schema


class ReadYourWritesMiddleware:
    """After a request that wrote, its session reads from the primary for a while.

    Sits after SessionMiddleware: the session is read here (before any view, so on the
    primary) and the timestamp set here is saved by SessionMiddleware on the way out.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        until = session.get(PRIMARY_UNTIL, 0) if session is not None else 0
        state = RequestReads(sticky=time.time() < until)
        token = _reads.set(state)
        try:
            response = self.get_response(request)
        finally:
            _reads.reset(token)
        # A POST counts even when its writes were raw SQL the router never saw.
        wrote = state.wrote or request.method not in SAFE_METHODS
        if wrote and session is not None and replica_configured():
            session[PRIMARY_UNTIL] = time.time() + settings.REPLICA_STICKY_SECONDS
        return response
