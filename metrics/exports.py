"""Streaming CSV exports.

Rows are produced one at a time from `.iterator()` and written through csv.writer into a
StreamingHttpResponse, so memory stays flat however long the history. Values come from the
page's own django-tables2 columns (`value()`), so a CSV and its page cannot disagree.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

import django_tables2 as tables
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.encoding import force_str
from django_tables2.rows import BoundRow

from accounts.access import ConsoleRequest
from accounts.models import Enterprise
from asksage_admin.core.audit import log_activity
from asksage_admin.core.models import ActivityLog

# A spreadsheet treats a cell starting with one of these as a formula (or strips the
# control character and then does): CSV injection. Prefixing "'" makes it plain text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell made safe for spreadsheets; numbers and empty cells are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class _Echo:
    """A file-like object whose write() hands the line back, for csv.writer streaming."""

    def write(self, value: str) -> str:
        return value


def table_rows(table: tables.Table, records: Iterable[Any]) -> Iterator[list[Any]]:
    """Header, then one row per record, through the table's columns and their value().

    Like Table.as_values(), but over any iterable: as_values() walks table.data, which would
    load a whole queryset into memory.
    """
    columns = [c for c in table.columns.iterall() if not c.column.exclude_from_export]
    yield [force_str(c.header, strings_only=True) for c in columns]
    for record in records:
        row = BoundRow(record, table=table)
        yield [force_str(row.get_cell_value(c.name), strings_only=True) for c in columns]


def value_rows(table: tables.Table, queryset: QuerySet) -> Iterator[list[Any]]:
    """Header, then one row per record, read with values_list() in the table's column order.

    For tables whose columns are plain fields and annotations (user and activity exports): ~15x
    faster than table_rows(), which renders every cell through django-tables2. Choice fields
    give their labels, and a table's `value_<column>(value)` method still formats its column.
    """
    columns = [c for c in table.columns.iterall() if not c.column.exclude_from_export]
    yield [force_str(c.header, strings_only=True) for c in columns]
    fields = [str(c.accessor) for c in columns]
    model_fields = {f.name: f for f in queryset.model._meta.get_fields() if hasattr(f, "choices")}
    convert = []
    for name in fields:
        formatter = getattr(table, f"value_{name}", None)
        choices = dict(model_fields[name].choices or ()) if name in model_fields else {}
        convert.append(formatter or ((lambda v, c=choices: c.get(v, v)) if choices else None))
    for values in queryset.values_list(*fields).iterator(chunk_size=2000):
        yield [
            value if fn is None or value is None else fn(value)
            for fn, value in zip(convert, values, strict=True)
        ]


def export_filename(enterprise: Enterprise, name: str) -> str:
    """`<slug>-<name>-<YYYY-MM-DD>.csv`, dated in the enterprise's time zone."""
    today = timezone.localdate(timezone=enterprise.tzinfo)
    return f"{enterprise.slug}-{name}-{today:%Y-%m-%d}.csv"


def csv_response(
    request: ConsoleRequest, *, name: str, rows: Iterable[list[Any]], row_count: int
) -> StreamingHttpResponse:
    """Log the download, then stream `rows` (header first) as `<slug>-<name>-<date>.csv`.

    The row count is taken before streaming starts, so the log row is written inside the
    request (with its IP and request id) even if the client abandons the download.
    """
    enterprise: Enterprise = request.enterprise
    log_activity(
        actor=request.user,
        action=ActivityLog.Action.EXPORT_DOWNLOADED,
        enterprise=enterprise,
        target=name,
        new={"export": name, "rows": row_count},
    )
    writer = csv.writer(_Echo())
    lines = (writer.writerow([neutralise(cell) for cell in row]) for row in rows)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    filename = export_filename(enterprise, name)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
