"""The shape of one usage event and its validation, before anything touches the database.

Each event is judged on its own: a bad one becomes a `rejected` result (code `invalid`,
with the field), never an error for the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from metrics.models import UsageEvent, UsageKind
from metrics.quota import MAX_EVENT_TOKENS

# Integrations' clocks may run a little ahead; anything further out is a bug, not usage.
MAX_CLOCK_SKEW = timedelta(minutes=15)
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_EVENT_ID_LENGTH = cast(int, UsageEvent._meta.get_field("event_id").max_length)
MAX_MODEL_LENGTH = cast(int, UsageEvent._meta.get_field("model").max_length)


@dataclass
class EventResult:
    """The outcome of one event of a batch, in the batch's order."""

    index: int
    id: str | None
    status: str  # recorded | duplicate | rejected
    code: str = ""  # unknown_user | not_enterprise_user | invalid | conflict
    field: str = ""
    message: str = ""
    overage: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "id": self.id, "status": self.status}
        if self.status == "rejected":
            out["code"] = self.code
            if self.field:
                out["field"] = self.field
            out["message"] = self.message
        if self.overage is not None:
            out["overage"] = self.overage
        return out


@dataclass(frozen=True)
class ParsedEvent:
    """A validated event, before its user is resolved."""

    index: int
    event_id: str
    email: str
    kind: str
    tokens: int
    occurred_at: datetime
    model: str


class InvalidEvent(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _text(
    raw: dict, field: str, *, max_length: int, required: bool = True, strip: bool = False
) -> str:
    value = raw.get(field)
    if value is None and not required:
        return ""
    if isinstance(value, str) and strip:
        # " e1" and "e1" are one event: an id padded by a client must not count twice.
        value = value.strip()
    if not isinstance(value, str) or (required and not value):
        raise InvalidEvent(field, f"{field} must be a non-empty string.")
    if len(value) > max_length:
        raise InvalidEvent(field, f"{field} must be at most {max_length} characters.")
    # Refused here so one odd event cannot fail the whole batch's INSERT.
    problem = unstorable(value)
    if problem:
        raise InvalidEvent(field, f"{field} {problem}")
    return value


def unstorable(value: str) -> str:
    """Why PostgreSQL could not store this text ("" when it can): NUL, or lone surrogates
    that JSON escapes ("\\udb1e") can carry but UTF-8 cannot encode."""
    if "\x00" in value:
        return "must not contain NUL characters."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text."
    return ""


def _parse_occurred_at(raw: dict, now: datetime) -> datetime:
    value = raw.get("occurred_at")
    if not isinstance(value, str):
        raise InvalidEvent("occurred_at", "occurred_at must be an ISO 8601 date-time string.")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEvent("occurred_at", "occurred_at is not an ISO 8601 date-time.") from None
    if moment.tzinfo is None:
        raise InvalidEvent("occurred_at", "occurred_at needs a UTC offset (e.g. Z or +02:00).")
    if moment < EARLIEST_EVENT or moment > now + MAX_CLOCK_SKEW:
        raise InvalidEvent("occurred_at", "occurred_at is too far in the past or in the future.")
    return moment.astimezone(UTC)


def parse_event(index: int, raw: Any, now: datetime) -> ParsedEvent:
    if not isinstance(raw, dict):
        raise InvalidEvent("event", "Each event must be a JSON object.")
    event_id = _text(raw, "id", max_length=MAX_EVENT_ID_LENGTH, strip=True)
    email = _text(raw, "user", max_length=254, strip=True).lower()
    kind = raw.get("kind")
    if kind not in UsageKind.values:
        raise InvalidEvent("kind", f"kind must be one of {', '.join(UsageKind.values)}.")
    tokens = raw.get("tokens")
    # bool is an int in Python; JSON true is not a token count.
    if not isinstance(tokens, int) or isinstance(tokens, bool):
        raise InvalidEvent("tokens", "tokens must be a whole number.")
    if not 0 < tokens <= MAX_EVENT_TOKENS:
        raise InvalidEvent("tokens", f"tokens must be between 1 and {MAX_EVENT_TOKENS}.")
    return ParsedEvent(
        index=index,
        event_id=event_id,
        email=email,
        kind=kind,
        tokens=tokens,
        occurred_at=_parse_occurred_at(raw, now),
        model=_text(raw, "model", max_length=MAX_MODEL_LENGTH, required=False),
    )
