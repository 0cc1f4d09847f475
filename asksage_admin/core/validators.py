"""Validators for names that end up in email headers, CSV cells and page titles."""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError

# Cc: control characters (newline, tab, NUL, ESC ...); Zl/Zp: Unicode line and paragraph
# separators. A newline in an enterprise name would split the subject header of every
# invitation (Django refuses to send it: BadHeaderError), and none belongs in a name.
_REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def validate_single_line_name(value: str) -> None:
    """Refuse control characters and line breaks in a name shown to people."""
    if any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in value):
        raise ValidationError(
            "Names cannot contain line breaks, tabs or other control characters.",
            code="control_characters",
        )
