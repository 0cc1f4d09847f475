"""Console read pages: Dashboard, statistics, exports, activity log."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods
from django_tables2 import RequestConfig

from accounts.access import ConsoleRequest, console_view
from accounts.queries import people_summary
from asksage_admin.core.filters import filter_problem, filtered_rows, refuse_bad_filter
from asksage_admin.core.models import ActivityLog, ChainVerification
from asksage_admin.core.replica import replica_reads
from asksage_admin.core.tables import BaseTable
from metrics import (
    alerts,
    charts,
    copy_export,
    export_verify,
    exports,
    forecast,
    queries,
    statements,
)
from metrics.filters import ActivityLogFilterSet, MonthRangeFilterSet
from metrics.models import EnterpriseMonthlyUsage, ReconcileRun
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
    ctx["pools"] = pools = pool_totals(enterprise)  # token figures: tokens/pool_summary.html
    ctx["usage"] = usage = queries.dashboard_usage(enterprise, pools=pools)
    ctx["recent_alerts"] = alerts.recent_alerts(enterprise)
    ctx["forecast"] = forecast.enterprise_forecast(
        enterprise,
        capacity=usage.capacity,
        month_inference=usage.inference,
        training_purchased=usage.training_purchased,
        training_used=usage.training_used,
        today=timezone.localdate(timezone=enterprise.tzinfo),
    )
    return render(request, "metrics/dashboard.html", ctx)


def _month_range(request: ConsoleRequest) -> tuple[MonthRangeFilterSet, queries.MonthRange | None]:
    """The ?from=&to= months and the range they give; None when the input is invalid (pages
    then show the errors and no figures, never everything)."""
    filterset = MonthRangeFilterSet(
        request.GET or None, queryset=EnterpriseMonthlyUsage.objects.none()
    )
    if filter_problem(filterset):
        return filterset, None
    return filterset, filterset.month_range()


def _range_ctx(filterset: MonthRangeFilterSet, months: queries.MonthRange | None) -> dict:
    return {
        "range_filter": filterset,
        "range_query": urlencode(months.as_filters()) if months else "",
        "range_limited": bool(months and not months.is_everything),
    }


@require_GET
@console_view
@replica_reads
def token_statistics(request: ConsoleRequest) -> HttpResponse:
    filterset, months = _month_range(request)
    rows = queries.monthly_totals(request.enterprise, months) if months else []
    years = queries.yearly_subtotals(rows)
    table_rows = [item for year in years for item in (year, *year.months)]
    busiest = max(rows, key=lambda r: (r.total, r.month), default=None)
    this_year = queries.month_start(request.enterprise).year
    choices = sorted({y.year for y in years} | {this_year}, reverse=True)
    year, year_note = chart_year(request.GET.get("year"), choices, this_year)
    ctx = {
        "years": years,
        "table": TokenStatisticsTable(table_rows),
        "lifetime": sum(r.total for r in rows),
        "busiest": busiest if busiest and busiest.total else None,
        "this_year": this_year,
        "year": year,
        "year_choices": choices,
        "year_note": year_note,
        "chart": charts.year_chart(rows, year),
        **_range_ctx(filterset, months),
    }
    return render(request, "metrics/token_statistics.html", ctx)


def chart_year(asked: str | None, choices: list[int], this_year: int) -> tuple[int, str]:
    """The year to chart from ?year=, and a sentence when it is not the one asked for.

    A year outside the enterprise's figures, or anything that is not a year, shows the
    current year (in the enterprise's time zone) with a note; it is never an error page.
    The note never repeats what was typed.
    """
    if asked is None or asked == "":
        return this_year, ""
    if not (len(asked) == 4 and asked.isascii() and asked.isdigit()):
        return this_year, f"That is not a year; showing {this_year}."
    year = int(asked)
    if year not in choices:
        return this_year, f"No usage was reported in {year}; showing {this_year}."
    return year, ""


@require_GET
@console_view
@replica_reads
def token_usage(request: ConsoleRequest) -> HttpResponse:
    enterprise = request.enterprise
    filterset, months = _month_range(request)
    if months is None:
        rows, breakdown, top, by_model = [], queries.Breakdown(0, 0), [], []
    else:
        rows = queries.monthly_totals(enterprise, months)
        breakdown = queries.usage_breakdown(enterprise, months)
        top = queries.top_users(enterprise, TOP_USERS, grand=breakdown.total, months=months)
        by_model = queries.usage_by_model(enterprise, months)
    ctx = {
        "breakdown": breakdown,
        "chart": charts.monthly_usage_chart(rows),
        "months_charted": min(len(rows), 24),
        "top_users": TopUsersTable(top),
        "models": ModelUsageTable(by_model),
        "top_n": TOP_USERS,
        **_range_ctx(filterset, months),
    }
    return render(request, "metrics/token_usage.html", ctx)


@require_GET
@console_view
@replica_reads
def monthly(request: ConsoleRequest) -> HttpResponse:
    filterset, months = _month_range(request)
    rows = queries.monthly_totals(request.enterprise, months) if months else []
    adjusted = statements.adjusted_after_close(request.enterprise, {r.month: r.total for r in rows})
    rows = [replace(r, adjusted_after_close=True) if r.month in adjusted else r for r in rows]
    spikes = [r for r in rows if r.spike]
    ctx = {
        "table": MonthlyDataTable(list(reversed(rows))),
        "chart": charts.monthly_usage_chart(rows, mark_spikes=True),
        "months": len(rows),
        "spikes": spikes,
        "latest": rows[-1] if rows else None,
        "spike_rule": queries.SPIKE_RULE,
        **_range_ctx(filterset, months),
        "adjusted": sorted(adjusted),
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


@csrf_exempt
def verify_export(request: HttpRequest) -> HttpResponseBase:
    """Exempt only so the size limit is in place before anything reads the body (Django's
    documented pattern); the view itself is csrf_protect'ed."""
    limit = export_verify.max_bytes()
    first = export_verify.LimitedUploadHandler(request, limit)
    request.upload_handlers = [first, *request.upload_handlers]
    return _verify_export(cast(ConsoleRequest, request))  # console_view checks it is one


@csrf_protect
@require_http_methods(["GET", "POST"])
@console_view
def _verify_export(request: ConsoleRequest) -> HttpResponse:
    """Upload a CSV: is it, byte for byte, an export this enterprise downloaded? Auditors and
    admins alike (it reads, it changes nothing)."""
    enterprise = request.enterprise
    form = export_verify.VerifyExportForm()
    ctx: dict = {"form": form, "max_mb": export_verify.max_bytes() // (1024 * 1024)}
    status = 200
    if request.method == "POST":
        form = export_verify.VerifyExportForm(request.POST, request.FILES)
        if export_verify.too_large(request):
            # The handler stopped reading: nothing past the limit was stored or hashed.
            ctx["refused"] = export_verify.too_large_message()
            form = export_verify.VerifyExportForm()
            status = 413
        elif form.is_valid():
            upload = form.cleaned_data["file"]
            sha256 = export_verify.file_sha256(upload)
            ctx["checked"] = {"name": upload.name, "size": upload.size, "sha256": sha256}
            ctx["matches"] = list(export_verify.matching_exports(enterprise, sha256)[:20])
        else:
            status = 400
        ctx["form"] = form
    with timezone.override(enterprise.tzinfo):
        return render(request, "metrics/export_verify.html", ctx, status=status)


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
def token_usage_csv(request: ConsoleRequest) -> HttpResponseBase:
    """The monthly history, within ?from=&to= when given (a bad month is a 400)."""
    enterprise = request.enterprise
    filterset, months = _month_range(request)
    if months is None:
        return refuse_bad_filter(filterset) or HttpResponse(status=400)
    table = MonthlyDataTable([])
    return exports.csv_response(
        request,
        name="token-usage",
        rows=exports.table_rows(table, queries.iter_monthly_totals(enterprise, months)),
        row_count=queries.monthly_row_count(enterprise, months),
        filters=months.as_filters(),
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
        filters=exports.applied_filters(filterset),
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
        filters=exports.applied_filters(filterset),
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
