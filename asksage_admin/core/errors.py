"""The one error family of the write rules, and the one JSON error body.

Services raise `Refused`; views turn it into a form error, a message or `json_error`.
The usage API and the console's JSON endpoints answer errors in the same shape:
`{"error": {"code": ..., "message": ...[, "field": ...][, "rows": {...}]}}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import JsonResponse

# HTTP status for a refusal code, where it is not the default 422.
REFUSAL_STATUS = {"not_found": 404, "conflict": 409}


class Refused(Exception):
    """A write rule said no; nothing was changed.

    `message` is for people. `rows` maps a row key (a user id, an email or a form field name)
    to the reason that concerns that row, so a table or form can show it in place.
    `code` is stable for programs: invalid, not_found, conflict, minimum, over_pool,
    last_admin, state, activation.
    """

    def __init__(
        self, message: str, *, code: str = "invalid", rows: Mapping[Any, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.rows: dict[Any, str] = dict(rows or {})

    @property
    def status(self) -> int:
        return REFUSAL_STATUS.get(self.code, 422)


def json_error(
    status: int,
    code: str,
    message: str,
    *,
    field: str = "",
    rows: Mapping[Any, str] | None = None,
) -> JsonResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    if rows:
        body["rows"] = {str(key): reason for key, reason in rows.items()}
    return JsonResponse({"error": body}, status=status)


def refusal_response(exc: Refused) -> JsonResponse:
    return json_error(exc.status, exc.code, exc.message, rows=exc.rows)


# Constraint names the PostgreSQL guards raise with (asksage_admin.core.pg) -> refusal code.
_GUARD_CODES = {
    "pool_within_purchase": "over_pool",
    "paid_user_minimum": "minimum",
    "append_only": "state",
}


def guard_refusal(exc: BaseException) -> Refused | None:
    """The Refused a database guard's error stands for, or None for any other error.

    The triggers raise with the services' own wording, so the person sees the same clear
    message whichever layer said no; DETAIL names the row (`user:<id>`) or form field.
    """
    diag = getattr(exc.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if diag is None or name not in _GUARD_CODES:
        return None
    message = diag.message_primary or "The change was refused."
    detail = diag.message_detail or ""
    rows: dict[Any, str] = {}
    if detail.startswith("user:") and detail[5:].isdigit():
        rows[int(detail[5:])] = message
    elif detail in ("inference_tokens", "training_tokens"):
        rows[detail] = message
    return Refused(message, code=_GUARD_CODES[name], rows=rows)
