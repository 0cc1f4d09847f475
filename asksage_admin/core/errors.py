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
