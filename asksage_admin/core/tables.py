"""The base of every django-tables2 table: our markup, readable numbers, CSV-ready values."""

from __future__ import annotations

from typing import Any

import django_tables2 as tables
from django.contrib.humanize.templatetags.humanize import intcomma


class BaseTable(tables.Table):
    class Meta:
        attrs = {"class": "table"}
        template_name = "includes/table.html"
        empty_text = "Nothing to show yet."


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
