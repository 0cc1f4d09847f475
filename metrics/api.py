"""The usage API (/api/v1/): integrations report usage and ask for quota decisions.

Authentication is `Authorization: Bearer <key>` (an IntegrationKey), never a session, so
the views are csrf_exempt; metrics.middleware serves them ahead of the session, auth, CSRF,
OTP and messages middleware. Every error is JSON `{"error": {"code", "message"[, "field"]}}`:

    400 bad_json          the body is not JSON
    400 invalid_request   the JSON is not the expected shape (not an object, a required
                          field missing or of the wrong JSON type)
    401 unauthorized      no key, an unknown key or a revoked key
    405 method_not_allowed  anything but POST
    413 body_too_large    more than USAGE_MAX_BODY_BYTES
    413 too_many_events   more than USAGE_MAX_EVENTS_PER_BATCH events
    415 unsupported_media_type  Content-Type is not application/json
    422 empty_batch       `events` is an empty list: well-formed, nothing to process
    422 invalid           quota check: the fields have the right types but unacceptable
                          values (unknown kind, tokens < 1 or too large)
    429 rate_limited      the key spent its requests (API_RATE_LIMIT_PER_MINUTE,
                          API_RATE_BURST); Retry-After says when to come back

Problems with single events are not request errors: each event gets its own result.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from asksage_admin.core.ratelimit import limit_api_key
from asksage_admin.core.retry import run_transaction
from asksage_admin.core.telemetry import count_ingest, count_quota
from metrics import ingest, keys, quota
from metrics.models import IntegrationKey
from metrics.usage_events import unstorable

ERROR_STATUS = {"too_many_events": 413, "empty_batch": 422, "invalid": 422}

ApiView = Callable[[HttpRequest, IntegrationKey, dict[str, Any]], HttpResponse]


class BadRequest(Exception):
    def __init__(self, status: int, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def error(status: int, code: str, message: str, *, field: str = "") -> JsonResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return JsonResponse({"error": body}, status=status)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def _parse(request: HttpRequest) -> dict[str, Any]:
    """The JSON object in the body, after the content-type and size checks."""
    if request.content_type != "application/json":
        raise BadRequest(415, "unsupported_media_type", "Send Content-Type: application/json.")
    limit = settings.USAGE_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, "body_too_large", f"The body must be at most {limit} bytes.")
    # read() rather than .body: the limit is ours, not DATA_UPLOAD_MAX_MEMORY_SIZE's.
    body = request.read(limit + 1)
    if len(body) > limit:
        raise BadRequest(413, "body_too_large", f"The body must be at most {limit} bytes.")
    try:
        payload = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise BadRequest(400, "bad_json", "The body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise BadRequest(400, "invalid_request", "The body must be a JSON object.")
    return payload


def api_view(view: ApiView) -> Callable[[HttpRequest], HttpResponse]:
    """POST only, Bearer key, JSON object body; the view gets (request, key, payload)."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            response = error(405, "method_not_allowed", "Use POST.")
            response["Allow"] = "POST"
            return response
        scheme, _, plaintext = request.headers.get("Authorization", "").partition(" ")
        key = keys.authenticate_key(plaintext.strip()) if scheme == "Bearer" else None
        if key is None:
            response = error(401, "unauthorized", "A valid API key is required (Bearer).")
            response["WWW-Authenticate"] = 'Bearer realm="api"'
            return response
        if (limited := limit_api_key(key.pk)) is not None:
            return limited
        try:
            return view(request, key, _parse(request))
        except BadRequest as exc:
            return error(exc.status, exc.code, exc.message, field=exc.field)
        except quota.UsageRequestError as exc:
            return error(ERROR_STATUS[exc.code], exc.code, exc.message, field=exc.field)

    return wrapper


_JSON_TYPES = {list: "an array", str: "a string", int: "a whole number"}


def _field(payload: dict[str, Any], name: str, kind: type) -> Any:
    value = payload.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        message = f"{name} is required and must be {_JSON_TYPES[kind]}."
        raise BadRequest(400, "invalid_request", message, field=name)
    problem = unstorable(value) if isinstance(value, str) else ""
    if problem:
        raise BadRequest(400, "invalid_request", f"{name} {problem}", field=name)
    return value


@api_view
def usage_events(request: HttpRequest, key: IntegrationKey, payload: dict) -> HttpResponse:
    """POST /api/v1/usage/events: {"events": [...]} -> one result per event."""
    events = _field(payload, "events", list)
    results = run_transaction(
        lambda: ingest.record_usage_batch(integration=key, events=events), atomic=False
    )
    summary = {"recorded": 0, "duplicate": 0, "rejected": 0, "overage": 0}
    for result in results:
        summary[result.status] += 1
        summary["overage"] += bool(result.overage)
    count_ingest(summary)
    return JsonResponse({"results": [r.as_dict() for r in results], "summary": summary})


@api_view
def quota_check(request: HttpRequest, key: IntegrationKey, payload: dict) -> HttpResponse:
    """POST /api/v1/quota/check: {user, kind, tokens} -> allowed/denied, remaining, reset,
    and every reason that applies (`reasons`, code + message)."""
    decision = quota.check_quota(
        user_email=_field(payload, "user", str),
        kind=_field(payload, "kind", str),
        tokens=_field(payload, "tokens", int),
        integration=key,
    )
    count_quota(decision.decision, decision.reason)
    return JsonResponse(decision.as_dict())
