"""The base of every django-tables2 table: our markup, readable numbers, CSV-ready values."""

from __future__ import annotations

from typing import Any

import django_tables2 as tables
from django.contrib.humanize.templatetags.humanize import intcomma
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.html import conditional_escape, escape, format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe

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

    # The header, footer and pagination below are the markup of django-tables2's template
    # (includes/table.html uses them), written in Python: rendered by the template engine,
    # tag by tag, they cost 2-3 ms of a ten-column table's page.

    def lean_thead(self) -> SafeString:
        """<thead>: each column's th attributes and, when orderable, its sort link."""
        cells = []
        for column in self.columns:
            header = conditional_escape(column.header)
            if column.orderable:
                href = self._query(**{self.prefixed_order_by_field: column.order_by_alias.next})
                header = format_html('<a href="{}">{}</a>', href, header)
            th = self._column_attrs[column.name]["th"].as_html()
            cells.append(format_html("<th {}>{}</th>", th, header))
        return format_html("<thead>\n<tr>{}</tr>\n</thead>", mark_safe("".join(cells)))  # noqa: S308

    def lean_tfoot(self) -> SafeString:
        """<tfoot>: each column's footer (SafeString footers as they are, others escaped)."""
        cells = "".join(self.footer_cell(column) for column in self.columns)
        return format_html("<tfoot>\n<tr>{}</tr>\n</tfoot>", mark_safe(cells))  # noqa: S308

    def footer_cell(self, column: tables.columns.BoundColumn) -> SafeString:
        # column.footer inspects the footer's signature: asked only of columns that have one.
        footer = column.footer if column.has_footer() else ""
        return format_html(
            "<td {}>{}</td>", self._column_attrs[column.name]["tf"].as_html(), footer
        )

    @cached_property
    def _column_attrs(self) -> dict[str, dict[str, Any]]:
        """Each column's attributes (th, td, tf), computed once for the header and footer."""
        return {column.name: column.attrs for column in self.columns}

    def lean_pagination(self) -> SafeString:
        """Previous / "Page N of M · R rows" / Next. The links carry the page number and,
        when the paginator offers one, a seek (metrics.pagination)."""
        page = getattr(self, "page", None)
        if not page or self.paginator.num_pages <= 1:
            return mark_safe("")
        field = self.prefixed_page_field
        links = [
            format_html('<a href="{}">← Previous</a>', self._page_query(page, field, previous=True))
            if page.has_previous()
            else "",
            format_html(
                "<span>Page {} of {} · {} rows</span>",
                page.number,
                self.paginator.num_pages,
                self.paginator.count,
            ),
            format_html('<a href="{}">Next →</a>', self._page_query(page, field, previous=False))
            if page.has_next()
            else "",
        ]
        return format_html(
            '<nav class="pagination" aria-label="Pages">\n{}\n</nav>',
            mark_safe("\n".join(links)),  # noqa: S308 (each part escaped by format_html)
        )

    def _page_query(self, page: Any, field: str, *, previous: bool) -> SafeString:
        number = page.previous_page_number() if previous else page.next_page_number()
        seek = getattr(page, "previous_seek" if previous else "next_seek", "")
        if seek:
            return self._query(**{field: number, "seek": seek})
        return self._query(**{field: number})

    def _query(self, **updates: Any) -> SafeString:
        """As django-tables2's {% querystring_replace %}: the request's query string with
        these keys replaced, escaped for an attribute."""
        params = {**self._request_query, **updates}
        return mark_safe(escape("?" + urlencode(params, doseq=True)))  # noqa: S308

    @cached_property
    def _request_query(self) -> dict[str, list[str]]:
        request: HttpRequest | None = getattr(self, "request", None)
        return dict(request.GET.lists()) if request is not None else {}


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
