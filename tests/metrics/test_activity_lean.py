"""Activity Logs rows come from a lean template: the same cells django-tables2 rendered."""

from __future__ import annotations

import re

import pytest
from django.test import RequestFactory

from asksage_admin.core.audit import log_activity
from asksage_admin.core.models import ActivityLog
from metrics.tables import ActivityLogTable, ModelUsageTable, TopUsersTable

pytestmark = pytest.mark.django_db
Action = ActivityLog.Action


def _cells(html: str) -> list[list[str]]:
    body = re.search(r"<tbody[^>]*>(.*?)</tbody>", html, re.S)[1]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [[c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in rows]


def test_lean_rows_match_the_columns_render(org_admin_client, enterprise, org_admin):
    log_activity(
        actor=org_admin,
        action=Action.ALLOCATION_CHANGED,
        enterprise=enterprise,
        target="<b>x</b>@acme.test",
        old={"max_inference_tokens": 200_000},
        new={"max_inference_tokens": 350_000},
    )
    ActivityLog.objects.create(enterprise=enterprise, action="sign_in")  # no actor, no target
    lean = _cells(org_admin_client.get("/org/activity/").content.decode())
    # The same rows rendered cell by cell by django-tables2's own template.
    table = ActivityLogTable(
        ActivityLog.objects.for_enterprise(enterprise), time_zone=enterprise.tzinfo
    )
    table.template_name = "includes/table.html"
    table.request = RequestFactory().get("/org/activity/")
    plain = _cells(table.as_html(table.request))
    assert lean == plain
    assert "&lt;b&gt;x&lt;/b&gt;@acme.test" in lean[1][3]
    assert lean[0][1] == "—" and lean[0][3] == ""
    assert '<span class="old">200,000</span> → <span class="new">350,000</span>' in lean[1][4]


def test_actor_filter_reads_a_trigram_index():
    """icontains on actor email has its pg_trgm index (PostgreSQL; SQLite has none)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'activity_actor_trgm_idx'"
        )
        (definition,) = cursor.fetchone()
    assert "gin_trgm_ops" in definition and "upper" in definition


@pytest.mark.parametrize("table_class", [TopUsersTable, ModelUsageTable])
def test_share_tables_lean_rows_match_the_columns_render(table_class):
    from decimal import Decimal

    from metrics.queries import ModelUsage, UserUsage

    if table_class is ModelUsageTable:
        rows = [
            ModelUsage("<i>gpt</i>", 1_234_567, 0, Decimal("99.9")),
            ModelUsage("", 5, 7, Decimal("0.1")),
        ]
    else:
        rows = [
            UserUsage(1, "a&b@acme.test", 1_000, 2_500, Decimal("75")),
            UserUsage(2, "c@acme.test", 0, 0, Decimal("0")),
        ]
    request = RequestFactory().get("/org/token-usage/")
    lean_table = table_class(rows)
    assert lean_table.template_name == "includes/lean_table.html"
    lean = _cells(lean_table.as_html(request))
    plain_table = table_class(rows)
    plain_table.template_name = "includes/table.html"
    plain = _cells(plain_table.as_html(request))

    assert lean == plain
    assert len(lean) == 2 and "," in "".join(lean[0])


def test_change_values_are_escaped(enterprise):
    log = ActivityLog(
        enterprise=enterprise,
        action="allocation_changed",
        old_value={"note": "<b>old</b>", "gone": "x&y"},
        new_value={"note": '<script>alert("1")</script>', "count": 1200},
    )
    table = ActivityLogTable([], time_zone=enterprise.tzinfo)

    html = str(table.render_change(log))

    assert "<script>" not in html and "<b>" not in html
    assert (
        'Note: <span class="old">&lt;b&gt;old&lt;/b&gt;</span> → '
        '<span class="new">&lt;script&gt;alert(&quot;1&quot;)&lt;/script&gt;</span>'
    ) in html
    assert "Count: 1,200" in html and "Gone: x&amp;y" in html
    single = ActivityLog(enterprise=enterprise, action="sign_in", old_value="<i>a</i>", new_value=5)
    assert str(table.render_change(single)) == (
        '<span class="old">&lt;i&gt;a&lt;/i&gt;</span> → <span class="new">5</span>'
    )
