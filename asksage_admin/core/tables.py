"""The base of every django-tables2 table: our markup, readable numbers, CSV-ready values."""

from __future__ import annotations

from typing import Any

import django_tables2 as tables
from django.contrib.humanize.templatetags.humanize import intcomma

# The most rows one page renders, whatever ?per_page= asks: a page is not an export.
MAX_PER_PAGE = 500


def capped_per_page(per_page: int | None) -> int | None:
    """`per_page` within 1..MAX_PER_PAGE; None (the table's default) when not positive."""
    if per_page is None or per_page < 1:
        return None
    return min(per_page, MAX_PER_PAGE)


class BaseTable(tables.Table):
    class Meta:
        attrs = {"class": "table"}
        template_name = "includes/table.html"
        empty_text = "Nothing to show yet."

    def paginate(self, *args: Any, per_page: int | None = None, **kwargs: Any) -> BaseTable:
        # Every RequestConfig passes the request's ?per_page= through here.
        return super().paginate(*args, per_page=capped_per_page(per_page), **kwargs)


class TokenColumn(tables.Column):
    """A whole number of tokens: thousands separators on the page, a plain integer in CSV."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        attrs = kwargs.pop("attrs", {})
        attrs.setdefault("td", {}).setdefault("class", "num")
        attrs.setdefault("th", {}).setdefault("class", "num")
        kwargs.setdefault("default", 0)
        super().__init__(*args, attrs=attrs, **kwargs)

    def render(self, value: int) -> str:
        return intcomma(int(value or 0))

    def value(self, value: int) -> int:
        return int(value or 0)
