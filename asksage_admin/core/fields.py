"""Token counts parsed at the edge: forms and JSON readers hand services plain ints."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

# Far above any real purchase or allocation, far below BIGINT: a typo, not a sale.
MAX_TOKENS = 10**15
# ASCII digits only: str.isdigit() and int() also accept "٣٠٠" and other scripts' digits.
_TOKENS_RE = re.compile(r"[+-]?[0-9]{1,19}")
_SEPARATORS_RE = re.compile(r"[\s,_]")


def parse_token_count(value: Any, *, allow_negative: bool = False) -> int:
    """A whole number of tokens from an int or text such as "300,000"; ValueError says why."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("Enter a whole number of tokens.")
    if isinstance(value, str):
        text = _SEPARATORS_RE.sub("", value)
        if len(text) > 40 or not _TOKENS_RE.fullmatch(text):
            raise ValueError("Enter a whole number of tokens (digits 0-9 only).")
        value = int(text)
    if value < 0 and not allow_negative:
        raise ValueError("Tokens cannot be negative.")
    if abs(value) > MAX_TOKENS:
        raise ValueError(f"That is more than {MAX_TOKENS:,} tokens; check the number.")
    return value


class TokenCountField(forms.Field):
    """A form field for a token count: accepts "300,000", cleans to an int."""

    def __init__(self, *, allow_negative: bool = False, **kwargs: Any) -> None:
        self.allow_negative = allow_negative
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "numeric"}))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values or (isinstance(value, str) and not value.strip()):
            return None
        try:
            return parse_token_count(value, allow_negative=self.allow_negative)
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid") from None
