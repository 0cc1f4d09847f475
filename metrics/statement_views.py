"""Monthly statements: read-only pages and CSV (admins and auditors; see metrics.statements).

Every lookup is scoped to the request's enterprise, so another enterprise's month is a 404.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.db.models import Sum
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from accounts.access import ConsoleRequest, console_view
from asksage_admin.core.replica import replica_reads
from metrics import exports, statements
from metrics.models import EnterpriseMonthlyUsage, MonthlyStatement

PAGE_ROWS = 500
CSV_HEADER = [
    "Section",
    "Month",
    "User",
    "Model",
    "Reference",
    "Inference Tokens",
    "Embedding Tokens",
    "Date",
]


def _month(value: str) -> dt.date:
    """yyyy-mm from the URL (already shaped by its pattern); a month that cannot exist is 404."""
    try:
        return dt.date(int(value[:4]), int(value[5:7]), 1)
    except ValueError as exc:
        raise Http404("No such month.") from exc


def _statement(request: ConsoleRequest, month: str) -> MonthlyStatement:
    return get_object_or_404(MonthlyStatement, enterprise=request.enterprise, month=_month(month))


@require_GET
@console_view
@replica_reads
def statement_list(request: ConsoleRequest) -> HttpResponse:
    rows = (
        MonthlyStatement.objects.filter(enterprise=request.enterprise)
        .defer("content")
        .order_by("-month")
    )
    return render(request, "metrics/statements.html", {"statements": rows})


@require_GET
@console_view
@replica_reads
def statement_detail(request: ConsoleRequest, month: str) -> HttpResponse:
    statement = _statement(request, month)
    now = EnterpriseMonthlyUsage.objects.filter(
        enterprise=request.enterprise, month=statement.month
    ).aggregate(
        inference=Sum("inference_tokens", default=0), embedding=Sum("embedding_tokens", default=0)
    )
    frozen = statement.inference_tokens + statement.embedding_tokens
    c = statement.content
    ctx = {
        "statement": statement,
        "c": c,
        # Dates in the content are ISO text; the page shows them with the shared formats.
        "purchases": [p | {"on": dt.date.fromisoformat(p["purchased_on"])} for p in c["purchases"]],
        "adjustments": [
            a | {"for_month": _month(a["month"]), "on": dt.date.fromisoformat(a["recorded_on"])}
            for a in c["adjustments"]
        ],
        # A 100,000-user enterprise would make a page of megabytes: the heaviest users and
        # the first allocations here, everything in the CSV.
        "top_users": sorted(c["users"], key=lambda u: -(u["inference"] + u["embedding"]))[
            :PAGE_ROWS
        ],
        "first_allocations": c["allocations"][:PAGE_ROWS],
        "page_rows": PAGE_ROWS,
        "verified": statements.verify(statement),
        "late_tokens": int(now["inference"]) + int(now["embedding"]) - frozen,
    }
    return render(request, "metrics/statement_detail.html", ctx)


def statement_rows(statement: MonthlyStatement) -> Iterator[list[Any]]:
    """The statement as CSV rows (header first): every section, one line per item."""
    c = statement.content
    month = c["month"]
    yield CSV_HEADER
    yield [
        "statement",
        month,
        "",
        "",
        statement.sha256,
        c["totals"]["inference"],
        c["totals"]["embedding"],
        c["closed_at"],
    ]
    for u in c["users"]:
        yield ["user", month, u["email"], "", "", u["inference"], u["embedding"], ""]
    for m in c["models"]:
        yield ["model", month, "", m["model"], "", m["inference"], m["embedding"], ""]
    for a in c["allocations"]:
        yield [
            "allocation",
            month,
            a["email"],
            "",
            "",
            a["max_inference_tokens"],
            a["max_embedding_tokens"],
            "",
        ]
    for p in c["purchases"]:
        yield [
            "purchase",
            month,
            "",
            "",
            p["reference"],
            p["inference_tokens"],
            p["training_tokens"],
            p["purchased_on"],
        ]
    for a in c["adjustments"]:
        yield [
            "adjustment",
            a["month"],
            a["email"],
            "",
            "",
            a["inference"],
            a["embedding"],
            a["recorded_on"],
        ]


@require_GET
@console_view
@replica_reads
def statement_csv(request: ConsoleRequest, month: str) -> StreamingHttpResponse:
    statement = _statement(request, month)
    c = statement.content
    count = 1 + sum(
        len(c[k]) for k in ("users", "models", "allocations", "purchases", "adjustments")
    )
    return exports.csv_response(
        request,
        name=f"statement-{statement.period}",
        rows=statement_rows(statement),
        row_count=count,
    )
