"""Token counts are parsed at the edge: ASCII digits with separators, a clear range error."""

from __future__ import annotations

import pytest

from asksage_admin.core.fields import MAX_TOKENS, parse_token_count


@pytest.mark.parametrize(
    ("typed", "parsed"), [("300,000", 300_000), (" 1 000 ", 1000), ("1_000", 1000), (42, 42)]
)
def test_accepts_whole_numbers_with_separators(typed, parsed):
    assert parse_token_count(typed) == parsed


@pytest.mark.parametrize(
    "typed", ["abc", "1.5", "2e6", "", "12 34x", 1.5, None, True, [1], "٣٠٠", "０", "9" * 5000]
)
def test_refuses_anything_but_ascii_digits(typed):
    with pytest.raises(ValueError, match="whole number"):
        parse_token_count(typed)


def test_refuses_negative_unless_allowed():
    with pytest.raises(ValueError, match="negative"):
        parse_token_count("-5")
    assert parse_token_count("-5", allow_negative=True) == -5


def test_refuses_huge_numbers_as_a_typo():
    with pytest.raises(ValueError, match="check the number"):
        parse_token_count(MAX_TOKENS + 1)
    with pytest.raises(ValueError, match="check the number"):
        parse_token_count("9" * 19)
