"""Console read pages: Dashboard, statistics, exports, activity log."""

from __future__ import annotations

from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_tables2 import RequestConfig

from accounts.access import ConsoleRequest, console_view
from accounts.queries import people_summary
from asksage_admin.core.filters import filtered_rows, refuse_bad_filter
from asksage_admin.core.models import ActivityLog, ChainVerification
from asksage_admin.core.replica import replica_reads
from asksage_admin.core.tables import BaseTable
from metrics import charts, copy_export, exports, queries
from metrics.filters import ActivityLogFilterSet
from metrics.models import ReconcileRun
from metrics.pagination import NearEndPaginator
from metrics.tables import (
    ActivityLogTable,
    ModelUsageTable,
    MonthlyDataTable,
    TokenStatisticsTable,
    TopUsersTable,
    UserExportTable,
)
from metrics.user_usage import users_with_usage
from tokens.filters import UserFilter
from tokens.queries import pool_totals
from tokens.tables import UserTable

ACTIVITY_PER_PAGE = 50
TOP_USERS = 10
# SQL twins of ActivityLogTable's value_<column>() for the COPY export (metrics/copy_export.py).
ACTIVITY_CSV = {
    "created_at": copy_export.LOCAL_ISO_MICROSECONDS,
    "action": copy_export.RAW,
    "old_value": copy_export.JSON,
    "new_value": copy_export.JSON,
}


@require_GET
@console_view
def dashboard(request: ConsoleRequest) -> HttpResponse:
    enterprise = request.enterprise
    ctx = {
        "enterprise": enterprise,
        "people": people_summary(enterprise),
        "last_reconcile": ReconcileRun.objects.last_passed(),
        "last_chain_check": ChainVerification.objects.latest_run(),
    }
    ctx["usage"] = queries.dashboard_usage(enterprise)
    ctx["pools"] = pool_totals(enterprise)  # token figures: tokens/pool_summary.html
    return render(request, "metrics/dashboard.html", ctx)


@require_GET
@console_view
@replica_reads
def token_statistics(request: ConsoleRequest) -> HttpResponse:
    rows = queries.monthly_totals(request.enterprise)
    years = queries.yearly_subtotals(rows)
    table_rows = [item for year in years for item in (year, *year.months)]
    busiest = max(rows, key=lambda r: (r.total, r.month), default=None)
    ctx = {
        "years": years,
        "table": TokenStatisticsTable(table_rows),
        "lifetime": sum(r.total for r in rows),
        "busiest": busiest if busiest and busiest.total else None,
        "this_year": queries.month_start(request.enterprise).year,
    }
    return render(request, "metrics/token_statistics.html", ctx)


@require_GET
@console_view
@replica_reads
def token_usage(request: ConsoleRequest) -> HttpResponse:
    enterprise = request.enterprise
    rows = queries.monthly_totals(enterprise)
    breakdown = queries.usage_breakdown(enterprise)
    top = queries.top_users(enterprise, TOP_USERS, grand=breakdown.total)
    ctx = {
        "breakdown": breakdown,
        "chart": charts.monthly_usage_chart(rows),
        "months_charted": min(len(rows), 24),
        "top_users": TopUsersTable(top),
        "models": ModelUsageTable(queries.usage_by_model(enterprise)),
        "top_n": TOP_USERS,
    }
    return render(request, "metrics/token_usage.html", ctx)


@require_GET
@console_view
@replica_reads
def monthly(request: ConsoleRequest) -> HttpResponse:
    rows = queries.monthly_totals(request.enterprise)
    spikes = [r for r in rows if r.spike]
    ctx = {
        "table": MonthlyDataTable(list(reversed(rows))),
        "chart": charts.monthly_usage_chart(rows, mark_spikes=True),
        "months": len(rows),
        "spikes": spikes,
        "latest": rows[-1] if rows else None,
        "spike_rule": queries.SPIKE_RULE,
    }
    return render(request, "metrics/monthly.html", ctx)


@require_GET
@console_view
@replica_reads
def exports_page(request: ConsoleRequest) -> HttpResponse:
    enterprise = request.enterprise
    recent = ActivityLog.objects.for_enterprise(enterprise).filter(
        action=ActivityLog.Action.EXPORT_DOWNLOADED
    )[:8]
    ctx = {
        "enterprise": enterprise,
        "months": queries.monthly_row_count(enterprise),
        "recent": recent,
        "example_name": exports.export_filename(enterprise, "token-usage"),
    }
    with timezone.override(enterprise.tzinfo):
        return render(request, "metrics/exports.html", ctx)


def _activity_filter(request: ConsoleRequest) -> ActivityLogFilterSet:
    logs = ActivityLog.objects.for_enterprise(request.enterprise)
    return ActivityLogFilterSet(request.GET or None, queryset=logs, request=request)


@require_GET
@console_view
@replica_reads
def activity(request: ConsoleRequest) -> HttpResponse:
    filterset = _activity_filter(request)
    table = ActivityLogTable(filtered_rows(filterset), time_zone=request.enterprise.tzinfo)
    paginate = {
        "per_page": ACTIVITY_PER_PAGE,
        "paginator_class": NearEndPaginator,
        "seek": request.GET.get("seek", ""),  # Next / Previous: read after / before a row
    }
    RequestConfig(request, paginate=paginate).configure(table)
    ctx = {
        "filter": filterset,
        "table": table,
        "query": request.GET.urlencode(),
        "last_chain_check": ChainVerification.objects.latest_run(),
    }
    return render(request, "metrics/activity.html", ctx)


@require_GET
@console_view
@replica_reads
def token_usage_csv(request: ConsoleRequest) -> StreamingHttpResponse:
    enterprise = request.enterprise
    table = MonthlyDataTable([])
    return exports.csv_response(
        request,
        name="token-usage",
        rows=exports.table_rows(table, queries.iter_monthly_totals(enterprise)),
        row_count=queries.monthly_row_count(enterprise),
    )


@require_GET
@console_view
@replica_reads
def activity_csv(request: ConsoleRequest) -> HttpResponseBase:
    filterset = _activity_filter(request)
    if refused := refuse_bad_filter(filterset):
        return refused
    # Snapshot before this download's own log row is written, so the file and its row
    # count describe the same set of rows.
    latest = ActivityLog.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    logs = filterset.qs.filter(pk__lte=latest)
    time_zone = request.enterprise.tzinfo
    table = ActivityLogTable([], time_zone=time_zone)
    return exports.csv_response(
        request,
        name="activity-log",
        lines=exports.queryset_csv(table, logs, formats=ACTIVITY_CSV, time_zone=time_zone),
        row_count=logs.count(),
    )


def _users_csv(request: ConsoleRequest, *, name: str, table: BaseTable) -> HttpResponseBase:
    """The Users page's queryset and filters (?q=&role=&status=), one row per user."""
    filterset = UserFilter(request.GET, queryset=users_with_usage(request.enterprise))
    if refused := refuse_bad_filter(filterset):
        return refused
    users = filterset.qs
    return exports.csv_response(
        request,
        name=name,
        lines=exports.queryset_csv(table, users, formats={"date_joined": copy_export.UTC_DATE}),
        row_count=users.count(),
    )


@require_GET
@console_view
@replica_reads
def users_csv(request: ConsoleRequest) -> HttpResponseBase:
    return _users_csv(request, name="users", table=UserExportTable([]))


@require_GET
@console_view
@replica_reads
def users_with_tokens_csv(request: ConsoleRequest) -> HttpResponseBase:
    # The Users table itself: the same columns and value()s as /org/users/.
    table = UserTable([], pools=pool_totals(request.enterprise))
    return _users_csv(request, name="users-with-tokens", table=table)
