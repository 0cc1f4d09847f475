"""Streaming CSV exports.

Rows are produced one at a time from `.iterator()` and written through csv.writer into a
StreamingHttpResponse, so memory stays flat however long the history. Values come from the
page's own django-tables2 columns (`value()`), so a CSV and its page cannot disagree.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import django_tables2 as tables
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.encoding import force_str
from django_filters import FilterSet
from django_tables2.rows import BoundRow

from accounts.access import ConsoleRequest
from accounts.models import Enterprise
from asksage_admin.core.audit import log_activity
from asksage_admin.core.middleware import current_request_meta, request_meta_restored
from asksage_admin.core.models import ActivityLog
from metrics.copy_export import copy_lines

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


def header_line(table: tables.Table) -> str:
    """The CSV header of the table's export columns, as csv_response writes it."""
    columns = [c for c in table.columns.iterall() if not c.column.exclude_from_export]
    header = [neutralise(force_str(c.header, strings_only=True)) for c in columns]
    return csv.writer(_Echo()).writerow(header)


def queryset_csv(
    table: tables.Table,
    queryset: QuerySet,
    *,
    formats: dict[str, str] | None = None,
    time_zone: Any = None,
) -> Iterator[str | bytes]:
    """The table's export of `queryset`, ready to stream: COPY on PostgreSQL, else Python.

    `formats` names the SQL twin of each table `value_<column>()` (see copy_export); both
    paths write the same bytes (tests/metrics/test_copy_export.py holds them to it).
    """
    rows = copy_lines(table, queryset, formats=formats, time_zone=time_zone)
    if rows is None:
        yield from csv_lines(value_rows(table, queryset))
        return
    # A generator (not itertools.chain): StreamingHttpResponse closes it when the client goes
    # away, which ends the COPY and frees the connection for the next request.
    yield header_line(table)
    yield from rows()


def csv_lines(rows: Iterable[list[Any]]) -> Iterator[str]:
    """Rows (header first) as neutralised CSV lines."""
    writer = csv.writer(_Echo())
    return (writer.writerow([neutralise(cell) for cell in row]) for row in rows)


def export_filename(enterprise: Enterprise, name: str) -> str:
    """`<slug>-<name>-<YYYY-MM-DD>.csv`, dated in the enterprise's time zone."""
    today = timezone.localdate(timezone=enterprise.tzinfo)
    return f"{enterprise.slug}-{name}-{today:%Y-%m-%d}.csv"


def applied_filters(filterset: FilterSet) -> dict[str, str]:
    """The filters an export applied, as text for its log row (empty values left out).

    Called after refuse_bad_filter, so a bound filterset is valid; unbound means none.
    """
    if not filterset.is_bound or not filterset.is_valid():
        return {}
    return {
        name: value.isoformat() if hasattr(value, "isoformat") else str(value)
        for name, value in filterset.form.cleaned_data.items()
        if value not in (None, "")
    }


def hashed_stream(
    lines: Iterable[str | bytes], on_end: Callable[[str, int, bool], None]
) -> Iterator[bytes]:
    """The lines as the very bytes sent, hashing them on the way; `on_end(sha256, size,
    complete)` runs when the stream ends, or is abandoned (complete False).

    Encoding here (not in StreamingHttpResponse) makes the hashed bytes the sent bytes.
    """
    digest = hashlib.sha256()
    size = 0
    complete = False
    try:
        for line in lines:
            chunk = line if isinstance(line, bytes) else line.encode("utf-8")
            digest.update(chunk)
            size += len(chunk)
            yield chunk
        complete = True
    finally:
        if isinstance(lines, Iterator) and hasattr(lines, "close"):
            lines.close()  # an abandoned COPY ends now, before the log row is written
        on_end(digest.hexdigest(), size, complete)


def csv_response(
    request: ConsoleRequest,
    *,
    name: str,
    rows: Iterable[list[Any]] | None = None,
    lines: Iterable[str | bytes] | None = None,
    row_count: int,
    filters: Mapping[str, str] | None = None,
) -> StreamingHttpResponse:
    """Stream `rows` (header first) as `<slug>-<name>-<date>.csv` and log the download.

    `lines` instead of `rows` streams CSV text already written (queryset_csv).

    The log row is written when the stream ends, with the SHA-256 of exactly the bytes
    sent (so /org/exports/verify/ can recognise the file), the row count (taken before
    streaming, with the same snapshot as the rows) and the filters. An abandoned download
    is still logged, marked incomplete. The request's IP and id are kept for that moment:
    by then the view and its middleware have returned.
    """
    enterprise: Enterprise = request.enterprise
    actor = request.user
    meta = current_request_meta()
    details: dict[str, Any] = {"export": name, "rows": row_count, "filters": dict(filters or {})}

    def log_download(sha256: str, size: int, complete: bool) -> None:
        with request_meta_restored(meta):
            log_activity(
                actor=actor,
                action=ActivityLog.Action.EXPORT_DOWNLOADED,
                enterprise=enterprise,
                target=name,
                new={**details, "sha256": sha256, "bytes": size, "complete": complete},
            )

    if lines is None:
        lines = csv_lines(rows or ())
    response = StreamingHttpResponse(
        hashed_stream(lines, log_download), content_type="text/csv; charset=utf-8"
    )
    filename = export_filename(enterprise, name)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
