"""CSV exports through PostgreSQL's COPY (SELECT ...) TO STDOUT, byte for byte the Python writer.

The Python writer (exports.value_rows + csv.writer) spends its time building a tuple per row and
quoting it in Python: ~60,000 rows/s. COPY lets the server format the CSV; each column's
conversion (choice labels, dates, JSON, the formula prefix) is done in SQL so the bytes match
what csv.writer would have written:

- csv.writer quotes a field holding `,` `"` CR or LF, doubles quotes, ends rows with CRLF;
  COPY's CSV format quotes the same characters but ends rows with LF and quotes an empty string,
  so empty strings become NULL (written bare) and each row's LF is swapped for CRLF here
  (libpq hands COPY data over one row at a time, so the row end is the last byte).
- Text cells starting with = + - @ tab or CR get the same "'" prefix as exports.neutralise().
- JSON is written by metrics_py_json() (migration 0002) as json.dumps(sort_keys=True) does.

A column this module cannot translate makes `copy_lines` return None, and the caller keeps the
Python writer: correctness first, speed where it is proven.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Iterator
from typing import Any

import django_tables2 as tables
from django.db import connections, models
from django.db.models import QuerySet

# Column formats a view can ask for, where the table's value_<column>() formats in Python.
LOCAL_ISO_SECONDS = "local_iso_seconds"  # isoformat(timespec="seconds") in the zone
LOCAL_ISO_MICROSECONDS = "local_iso_us"  # ActivityLogTable.value_created_at (hashed time)
UTC_DATE = "utc_date"  # UserExportTable.value_date_joined
RAW = "raw"  # a value_<column>() that returns the value unchanged (ActivityLogTable.action)
JSON = "json"  # ActivityLogTable.value_old_value / value_new_value

BATCH_ROWS = 2000
SORT_MEMORY = "32MB"

_NEUTRALISE = (
    "CASE WHEN left({x}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') THEN '''' || {x} ELSE {x} END"
)


def _literal(value: str) -> str:
    """A SQL string literal of our own constants (choice labels, a zone name): quotes doubled,
    % doubled for the driver's placeholder syntax. Never given request input."""
    return "'" + value.replace("'", "''").replace("%", "%%") + "'"


def _text(expr: str) -> str:
    """A text cell: '' written bare (as NULL), formula prefixes neutralised."""
    return _NEUTRALISE.format(x=f"NULLIF(({expr})::text, '')")


def _local_iso(expr: str, tz: str, *, microseconds: bool = False) -> tuple[str, list[Any]]:
    """isoformat() of a timestamptz in `tz`: 2025-01-31T23:59:59+01:00, or with
    timespec="microseconds" 2025-01-31T23:59:59.000250+01:00."""
    local = f"({expr} AT TIME ZONE {_literal(tz)})"
    offset = f"extract(epoch FROM {local} - ({expr} AT TIME ZONE 'UTC'))::int"
    pattern = 'YYYY-MM-DD"T"HH24:MI:SS' + (".US" if microseconds else "")
    sql = (
        f"to_char({local}, '{pattern}')"
        f" || CASE WHEN {offset} < 0 THEN '-' ELSE '+' END"
        f" || to_char(make_interval(secs => abs({offset})), 'HH24:MI')"
        f" || CASE WHEN abs({offset}) %% 60 = 0 THEN ''"
        f" ELSE to_char(make_interval(secs => abs({offset})), ':SS') END"
    )
    return sql, []


def _column_sql(
    expr: str, field: models.Field | None, fmt: str | None, tz: str
) -> tuple[str, list[Any]] | None:
    if fmt == LOCAL_ISO_SECONDS:
        return _local_iso(expr, tz)
    if fmt == LOCAL_ISO_MICROSECONDS:
        return _local_iso(expr, tz, microseconds=True)
    if fmt == UTC_DATE:
        return f"to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD')", []
    if fmt == JSON:
        return _text(f"metrics_py_json({expr})"), []
    if fmt not in (None, RAW):
        return None
    if isinstance(field, models.IntegerField | models.ForeignKey):
        return expr, []  # ids (own and foreign keys), allocations, integer usage annotations
    if isinstance(field, models.GenericIPAddressField):
        return _text(f"host({expr})"), []  # inet::text would add the /32 mask
    if not isinstance(field, models.CharField | models.TextField):
        return None
    if field.choices and fmt is None:
        labels = dict(field.choices)
        whens = " ".join(f"WHEN {_literal(k)} THEN {_literal(v)}" for k, v in labels.items())
        return _text(f"CASE {expr} {whens} ELSE {expr} END"), []
    return _text(expr), []


def copy_sql(
    table: tables.Table,
    queryset: QuerySet,
    *,
    formats: dict[str, str] | None = None,
    time_zone: zoneinfo.ZoneInfo | None = None,
) -> tuple[str, list[Any]] | None:
    """The COPY statement for the table's export columns over `queryset`, or None if a column
    has a Python formatter with no SQL twin in `formats`."""
    formats = formats or {}
    columns = [c for c in table.columns.iterall() if not c.column.exclude_from_export]
    names = [str(c.accessor) for c in columns]
    concrete = queryset.model._meta.concrete_fields
    # By name and by column attribute: "enterprise_id" is the foreign key's own value.
    model_fields = {f.name: f for f in concrete} | {f.attname: f for f in concrete}
    selects, params = [], []
    for i, name in enumerate(names):
        if hasattr(table, f"value_{name}") and name not in formats:
            return None
        field = model_fields.get(name) or getattr(
            queryset.query.annotations.get(name), "output_field", None
        )
        built = _column_sql(f"t.c{i}", field, formats.get(name), str(time_zone))
        if built is None:
            return None
        selects.append(built[0])
        params.extend(built[1])
    inner, inner_params = queryset.values_list(*names).query.sql_with_params()
    aliases = ", ".join(f"c{i}" for i in range(len(names)))
    # Every piece is this module's own SQL or Django's compiled query; values travel as params.
    select = f"SELECT {', '.join(selects)} FROM ({inner}) AS t({aliases})"  # noqa: S608
    sql = f"COPY ({select}) TO STDOUT WITH (FORMAT csv)"
    return sql, [*params, *inner_params]


def copy_lines(
    table: tables.Table,
    queryset: QuerySet,
    *,
    formats: dict[str, str] | None = None,
    time_zone: zoneinfo.ZoneInfo | None = None,
) -> Callable[[], Iterator[bytes]] | None:
    """A generator factory of CSV bytes (rows only, CRLF-terminated), or None off PostgreSQL."""
    # The alias the router picks for this queryset now (the replica under @replica_reads).
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    statement = copy_sql(table, queryset, formats=formats, time_zone=time_zone)
    if statement is None:
        return None
    sql, params = statement

    def generate() -> Iterator[bytes]:
        # Runs while the response streams: the request's connection is still open then.
        connection.ensure_connection()
        # Inside a transaction (tests, a view under atomic) an abandoned download cancels the
        # COPY and would leave the transaction failed: a savepoint contains that.
        savepoint = connection.in_atomic_block
        with connection.connection.cursor() as cursor:
            if savepoint:
                cursor.execute("SAVEPOINT copy_export")
            # The export's ORDER BY sorts up to 100,000 rows: with the default 4 MB PostgreSQL
            # sorts on disk (external merge); in memory the COPY is ~25% faster. Server memory,
            # for this statement only: reset even if the client abandons the download.
            cursor.execute(f"SET work_mem = '{SORT_MEMORY}'")
            try:
                yield from _rows(cursor, sql, params)
            finally:
                if savepoint:
                    cursor.execute("ROLLBACK TO SAVEPOINT copy_export")
                cursor.execute("RESET work_mem")

    return generate


def _rows(cursor: Any, sql: str, params: list[Any]) -> Iterator[bytes]:
    with cursor.copy(sql, params) as copy:
        batch: list[bytes] = []
        for row in copy:
            batch.append(bytes(row[:-1]))
            if len(batch) >= BATCH_ROWS:
                yield b"\r\n".join(batch) + b"\r\n"
                batch = []
        if batch:
            yield b"\r\n".join(batch) + b"\r\n"
