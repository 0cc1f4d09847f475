"""Pagination whose last page costs what the first does, with page numbers and the row count.

OFFSET pagination makes PostgreSQL walk (and throw away) every row before the page: on the
10,000-user enterprise the last Users page read 9,975 rows to show 25. This paginator reads a
page from the nearer end instead: pages past the middle run the same query in reverse order
(every sort here ends with a unique tie-breaker, so the reverse is exact) with the small offset
from the end, then flip the rows back. Page 1 and the last page both read one page of rows
through the sort's index; a middle page reads at most half the table's index entries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django_tables2.rows import BoundRows


class NearEndPaginator(Paginator):
    """A django-tables2 paginator (object_list is the table's BoundRows over a queryset)."""

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = min(bottom + self.per_page, self.count)
        rows: Any = self.object_list
        queryset: Any = getattr(getattr(rows, "data", None), "data", None)
        if bottom <= self.count - top or not hasattr(queryset, "reverse"):
            return Page(rows[bottom:top], number, self)
        records = list(queryset.reverse()[self.count - top : self.count - bottom])
        records.reverse()
        return Page(BoundRows(records, table=rows.table), number, self)


Split = Callable[[QuerySet, str], "tuple[QuerySet, QuerySet] | None"]


class SplitPaginator(NearEndPaginator):
    """NearEndPaginator for sorts that no single index serves, but two do one after the other.

    `split(queryset, key)` answers, for the table's sort key, two ascending querysets whose
    rows in turn are the sorted rows (metrics.user_usage.usage_split: users at zero usage by
    email, then users above zero by usage and email), or None for a sort one index serves.
    A page is read from the nearer end of the whole order: forwards (zero part, then the part
    above zero) or backwards (the part above zero reversed, then the zero part reversed), a
    descending sort being the mirror of the ascending one. The first and the last page read
    one page from each part at most; a page further in also counts the part read first.
    """

    def __init__(self, object_list: Any, per_page: int, *args: Any, split: Split, **kwargs: Any):
        super().__init__(object_list, per_page, *args, **kwargs)
        self.split = split

    def page(self, number: Any) -> Page:
        rows: Any = self.object_list
        queryset: Any = getattr(getattr(rows, "data", None), "data", None)
        order = list(getattr(getattr(queryset, "query", None), "order_by", ()))
        key = order[0] if order and isinstance(order[0], str) else ""
        parts = self.split(queryset, key.lstrip("-")) if key else None
        if parts is None:
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = min(bottom + self.per_page, self.count)
        descending = key.startswith("-")
        if descending:  # rows [bottom, top) of the ascending order, shown reversed
            bottom, top = self.count - top, self.count - bottom
        zero, above = parts
        if bottom <= self.count - top:
            records = _two_parts(zero, above, bottom, top - bottom)
        else:
            records = _two_parts(above.reverse(), zero.reverse(), self.count - top, top - bottom)
            records.reverse()
        if descending:
            records.reverse()
        return Page(BoundRows(records, table=rows.table), number, self)


def _two_parts(first: QuerySet, second: QuerySet, skip: int, size: int) -> list[Any]:
    """Rows [skip, skip + size) of `first` followed by `second`."""
    if size <= 0:
        return []
    if skip == 0:  # the first or the last page: no count needed
        records = list(first[:size])
    else:
        in_first = first.count()
        records = list(first[skip : skip + size]) if skip < in_first else []
        skip -= in_first
    if len(records) < size:
        start = max(skip, 0)
        records += list(second[start : start + size - len(records)])
    return records
