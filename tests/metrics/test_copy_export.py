"""The COPY exports write the very bytes the Python CSV writer writes, hostile values included."""

from __future__ import annotations

import pytest
from django.db import connection

from accounts.models import User
from asksage_admin.core.models import ActivityLog
from metrics import copy_export, exports
from metrics.queries import month_start
from metrics.tables import ActivityLogTable, UserExportTable
from metrics.user_usage import users_with_usage
from metrics.views import ACTIVITY_CSV
from tests import factories
from tests.metrics.helpers import add_usage_rows, make_purchase
from tokens.queries import pool_totals
from tokens.tables import UserTable

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

HOSTILE = [
    "=cmd|' /C calc'!A0",
    "+1",
    "-1",
    "@x",
    "\tTAB",
    "\rCR",
    'say "hi"',
    "a,b",
    "line\nbreak",
    "crlf\r\nend",
    "Zoë 東京 🚀",
    " leading space",
    "'already quoted",
    "\\.",
    "",
    "=",
]
JSON_VALUES = [
    None,
    {"max_inference_tokens": 200000, "b": -5},
    {"note": "=cmd", "zz": [1, "two", None, True, False], "a": {"nested": "ü"}},
    {"emoji": '🚀 \u007f \u0001 "q" \\ /', "long_key_first": 1, "k": 2},
    "-starts with minus",
    -42,
    [],
    {},
]


def _python_bytes(table, queryset) -> bytes:
    return "".join(exports.csv_lines(exports.value_rows(table, queryset))).encode()


def _copy_bytes(table, queryset, **kwargs) -> bytes:
    assert copy_export.copy_lines(table, queryset, **kwargs) is not None, "COPY path not taken"
    chunks = exports.queryset_csv(table, queryset, **kwargs)
    return b"".join(c.encode() if isinstance(c, str) else c for c in chunks)


@pytest.fixture
def hostile_users(enterprise) -> list[User]:
    users = []
    for i, text in enumerate(HOSTILE):
        user = factories.make_user(
            f"{text[:3].strip() or 'x'}{i}@example.com", enterprise=enterprise
        )
        user.full_name = text
        user.save(update_fields=["full_name"])
        users.append(user)
    users[0].email = "=HYPERLINK(1)@example.com"
    users[0].save(update_fields=["email"])
    add_usage_rows(users[:5], month_start(enterprise), inference=7, embedding=3)
    return users


def test_users_with_tokens_copy_is_byte_identical(enterprise, hostile_users):
    make_purchase(enterprise, inference=10**9)
    table = UserTable([], pools=pool_totals(enterprise))
    users = users_with_usage(enterprise)
    expected = _python_bytes(table, users)
    assert _copy_bytes(table, users) == expected
    assert b"'=hyperlink(1)@example.com" in expected


def test_users_copy_is_byte_identical(enterprise, hostile_users):
    table, users = UserExportTable([]), users_with_usage(enterprise)
    formats = {"date_joined": copy_export.UTC_DATE}
    assert _copy_bytes(table, users, formats=formats) == _python_bytes(table, users)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns", "Asia/Kathmandu"])
def test_activity_copy_is_byte_identical(org_admin, zone):
    enterprise = org_admin.enterprise
    enterprise.time_zone = zone
    enterprise.save(update_fields=["time_zone"])
    for i, text in enumerate(HOSTILE):
        ActivityLog.objects.create(
            enterprise=enterprise,
            actor=org_admin,
            actor_email=text,
            action="allocation_changed",
            target=text,
            request_id=text[:64],
            ip_address=["203.0.113.9", "2001:db8::1", None][i % 3],
            old_value=JSON_VALUES[i % len(JSON_VALUES)],
            new_value=JSON_VALUES[(i + 3) % len(JSON_VALUES)],
        )
    logs = ActivityLog.objects.for_enterprise(enterprise)
    table = ActivityLogTable([], time_zone=enterprise.tzinfo)
    copied = _copy_bytes(table, logs, formats=ACTIVITY_CSV, time_zone=enterprise.tzinfo)
    assert copied == _python_bytes(table, logs)


def test_users_with_tokens_rows_come_from_copy(enterprise, member):
    table = UserTable([], pools=pool_totals(enterprise))
    header, *rows = exports.queryset_csv(table, users_with_usage(enterprise))
    assert header.startswith("ID,Email,Role,Status")
    assert rows and all(isinstance(chunk, bytes) for chunk in rows)  # COPY's bytes, not str


def test_column_with_unknown_formatter_keeps_the_python_writer(enterprise, member):
    table = UserExportTable([])
    users = users_with_usage(enterprise)
    assert copy_export.copy_lines(table, users) is None
    chunks = exports.queryset_csv(table, users)
    assert "".join(chunks).encode() == _python_bytes(table, users)


def test_copy_sql_is_a_copy_statement(enterprise):
    sql, params = copy_export.copy_sql(
        UserTable([], pools=pool_totals(enterprise)), users_with_usage(enterprise)
    )
    assert sql.startswith("COPY (SELECT ") and sql.endswith("TO STDOUT WITH (FORMAT csv)")
    assert enterprise.pk in params


def test_abandoned_download_leaves_the_connection_usable(enterprise):
    User.objects.bulk_create(
        User(email=f"bulk{i}@example.com", enterprise=enterprise) for i in range(2500)
    )
    table = UserTable([], pools=pool_totals(enterprise))
    chunks = exports.queryset_csv(table, users_with_usage(enterprise))
    next(chunks), next(chunks)  # header, first 2,000 rows; the client goes away
    chunks.close()
    assert User.objects.filter(enterprise=enterprise).count() == 2500
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone()[0] == "4MB"


def test_search_with_percent_sign_through_copy(org_admin_client, enterprise):
    factories.make_user("pct50%@example.com", enterprise=enterprise)
    factories.make_user("other@example.com", enterprise=enterprise)
    response = org_admin_client.get("/org/exports/users-with-tokens.csv", {"q": "50%"})
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 2 and lines[1].split(",")[1] == "pct50%@example.com"
