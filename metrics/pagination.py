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

from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.utils.functional import cached_property
from django_tables2.rows import BoundRows


class NearEndPaginator(Paginator):
    """A django-tables2 paginator (object_list is the table's BoundRows over a queryset).

    Seek links: when the order is plain columns ending with a unique one, each page also
    offers `next_seek` / `previous_seek` ("a<id>.<order>" / "b<id>.<order>": after its last
    row, before its first row, in this order) for the Next and Previous links.
    `?page=N&seek=a<id>.<order>` then reads the page as
    the rows after that row through the sort's index (WHERE (sort columns) beyond its values
    LIMIT per_page): a page reached by Next or Previous costs what the first does wherever it
    is. The row is looked up in the page's own filtered queryset, so an id from elsewhere (or
    any other value, or a seek made for another sort order) is ignored and the page is read
    by number, from the nearer end.

    `count_rows`, when given, is counted instead of the table's queryset: the same rows
    without the columns shown (the Users table's usage joins change no row count, but
    PostgreSQL would join them all to count: 3.8 instead of 1.0 ms at 10,000 users).
    """

    def __init__(
        self,
        object_list: Any,
        per_page: int,
        *args: Any,
        seek: str = "",
        ids_in_order: IdsInOrder | None = None,
        count_rows: QuerySet | None = None,
        **kwargs: Any,
    ):
        super().__init__(object_list, per_page, *args, **kwargs)
        self.seek = seek
        self.ids_in_order = ids_in_order
        self.count_rows = count_rows

    @cached_property
    def count(self) -> int:
        if self.count_rows is not None:
            return self.count_rows.count()
        return super().count

    def page(self, number: Any) -> Page:
        rows: Any = self.object_list
        queryset: Any = getattr(getattr(rows, "data", None), "data", None)
        ids = self.ids_in_order(queryset, self.count) if self.ids_in_order else None
        if ids is not None:
            return self._page_of_ids(queryset, ids, number)
        number = self.validate_number(number)
        order = _keyset_order(queryset)
        signature = ""
        if order:
            signature = ",".join(queryset.query.order_by or queryset.model._meta.ordering)
        records = _seek(queryset, order, self.seek, signature, self.per_page) if order else None
        if records is None:
            bottom = (number - 1) * self.per_page
            top = min(bottom + self.per_page, self.count)
            if bottom <= self.count - top or not hasattr(queryset, "reverse"):
                records = _rows(queryset, bottom, top - bottom) if order else None
                if records is None:
                    return Page(rows[bottom:top], number, self)
            else:
                records = _rows(queryset.reverse(), self.count - top, top - bottom)
                records.reverse()
        page = Page(BoundRows(records, table=rows.table), number, self)
        if order and records:
            after, before = f"a{records[-1].pk}.{signature}", f"b{records[0].pk}.{signature}"
            page.next_seek = after if page.has_next() else ""  # type: ignore[attr-defined]
            page.previous_seek = before if page.has_previous() else ""  # type: ignore[attr-defined]
        return page

    def _page_of_ids(self, queryset: QuerySet, ids: list[int], number: Any) -> Page:
        """A page of an order given as ids (a sort no index serves, kept for a while)."""
        self.__dict__["count"] = len(ids)  # the ids are the rows: count and pages agree
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        records = _by_ids(queryset, ids[bottom : bottom + self.per_page])
        rows: Any = self.object_list
        return Page(BoundRows(records, table=rows.table), number, self)


# For a queryset and its row count: its rows' ids in its order, or None to read it as usual.
IdsInOrder = Callable[[QuerySet, int], "list[int] | None"]
Order = list[tuple[str, bool]]  # (column, descending)


def _keyset_order(queryset: Any) -> Order | None:
    """The queryset's order as (column, descending), when every term is a plain column and the
    last one is unique (a total order a seek can continue); None otherwise."""
    if queryset is None or not hasattr(queryset, "query"):
        return None
    meta = queryset.model._meta
    names = list(queryset.query.order_by) or list(meta.ordering)
    if not names or not all(isinstance(name, str) for name in names):
        return None
    order: Order = []
    field = None
    for term in names:
        name = term.lstrip("-")
        try:
            field = meta.pk if name == "pk" else meta.get_field(name)
        except FieldDoesNotExist:
            return None
        if not getattr(field, "concrete", False) or field.is_relation:
            return None
        order.append((field.attname, term.startswith("-")))
    if field is None or not (field.unique or field.primary_key):
        return None
    return order


def _seek(
    queryset: QuerySet, order: Order, seek: str, signature: str, per_page: int
) -> list[Any] | None:
    """The page after (a<id>) or before (b<id>) that row, or None to read by page number."""
    row, _, made_for = seek.partition(".")
    if made_for != signature or row[:1] not in ("a", "b") or not row[1:].isdigit():
        return None
    if len(row) > 19:  # beyond a bigint
        return None
    names = [name for name, _ in order]
    found = queryset.filter(pk=int(row[1:])).values_list(*names).first()
    if found is None:
        return None
    if row[0] == "a":
        records = list(queryset.filter(_beyond(order, found))[:per_page])
    else:
        flipped = [(name, not descending) for name, descending in order]
        records = list(queryset.reverse().filter(_beyond(flipped, found))[:per_page])
        records.reverse()
    return records or None


def _beyond(order: Order, values: tuple) -> Q:
    """Rows strictly after `values` in `order`: the first column's range (what the index
    reads), then the tie-breaks, (a > x) OR (a = x AND b > y) ..., each in its direction."""
    first, descending = order[0]
    condition = Q(**{f"{first}__{'lte' if descending else 'gte'}": values[0]})
    alternatives = Q()
    for i, (name, desc) in enumerate(order):
        term = Q(**{f"{name}__{'lt' if desc else 'gt'}": values[i]})
        for j in range(i):
            term &= Q(**{order[j][0]: values[j]})
        alternatives |= term
    return condition & alternatives


Split = Callable[[QuerySet, str], "tuple[QuerySet, QuerySet, str] | None"]


class SplitPaginator(NearEndPaginator):
    """NearEndPaginator for sorts that no single index serves, but two do one after the other.

    `split(queryset, key)` answers, for the table's sort key, two ascending querysets whose
    rows in turn are the sorted rows (metrics.user_usage.usage_split: users at zero usage by
    email, then users above zero by usage and email) and the value column of the second, or
    None for a sort one index serves. Next / Previous seek as NearEndPaginator's do: from the
    row, within its part (email, or (value, email)), crossing into the other part if short.
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
        zero, above, raw = parts
        signature = ",".join(order)
        records = self._seek_split(queryset, key, zero, above, raw, signature)
        if records is None:
            if bottom <= self.count - top:
                records = _two_parts(zero, above, bottom, top - bottom)
            else:
                records = _two_parts(
                    above.reverse(), zero.reverse(), self.count - top, top - bottom
                )
                records.reverse()
            if descending:
                records.reverse()
        page = Page(BoundRows(records, table=rows.table), number, self)
        if records:
            after, before = f"a{records[-1].pk}.{signature}", f"b{records[0].pk}.{signature}"
            page.next_seek = after if page.has_next() else ""  # type: ignore[attr-defined]
            page.previous_seek = before if page.has_previous() else ""  # type: ignore[attr-defined]
        return page

    def _seek_split(
        self, queryset: QuerySet, key: str, zero: QuerySet, above: QuerySet, raw: str, sig: str
    ) -> list[Any] | None:
        """The page after (a) or before (b) the seek's row in the displayed order, or None."""
        row, _, made_for = self.seek.partition(".")
        if made_for != sig or row[:1] not in ("a", "b") or not row[1:].isdigit() or len(row) > 19:
            return None
        found = queryset.filter(pk=int(row[1:])).values_list(key.lstrip("-"), raw, "email").first()
        if found is None:
            return None
        value, raw_value, email = found
        size, descending = self.per_page, key.startswith("-")
        if (row[0] == "a") != descending:  # the rows after it in the ascending order
            if not value:
                records = list(zero.filter(email__gt=email)[:size])
                if len(records) < size:
                    records += list(above[: size - len(records)])
            else:
                beyond = _beyond([(raw, False), ("email", False)], (raw_value, email))
                records = list(above.filter(beyond)[:size])
        else:  # the rows before it in the ascending order, nearest first
            if not value:
                records = list(zero.reverse().filter(email__lt=email)[:size])
            else:
                beyond = _beyond([(raw, True), ("email", True)], (raw_value, email))
                records = list(above.reverse().filter(beyond)[:size])
                records += (
                    list(zero.reverse()[: size - len(records)]) if len(records) < size else []
                )
            records.reverse()
        if descending:
            records.reverse()
        return records or None


def _two_parts(first: QuerySet, second: QuerySet, skip: int, size: int) -> list[Any]:
    """Rows [skip, skip + size) of `first` followed by `second`.

    `first` is counted only when the page starts past its end (to know where in `second` it
    starts): a page inside `first` reads no count (9 ms of the Users page 200 by usage).
    """
    if size <= 0:
        return []
    records = _rows(first, skip, size)
    if len(records) < size:
        # Some rows of `first` on the page: `second` from its start; none: skip its rows too.
        past = 0 if records or skip == 0 else max(skip - first.count(), 0)
        records += _rows(second, past, size - len(records))
    return records


def _rows(queryset: QuerySet, start: int, size: int) -> list[Any]:
    """Rows [start, start + size) of the queryset, in its order.

    Past the first rows, the skipped ones are read as ids only, then the page's rows whole:
    with OFFSET on the full query PostgreSQL computes every column of each skipped row
    (the Users page's per-user forecast sub-select ran 5,000 times for page 200).
    """
    if start == 0:
        return list(queryset[:size])
    return _by_ids(queryset, list(queryset.values_list("pk", flat=True)[start : start + size]))


def _by_ids(queryset: QuerySet, ids: list[Any]) -> list[Any]:
    """The queryset's rows with these ids, in the ids' order (a row gone since is left out)."""
    found = {row.pk: row for row in queryset.filter(pk__in=ids)}
    return [found[pk] for pk in ids if pk in found]
