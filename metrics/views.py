"""Console read pages: Dashboard, statistics, exports, activity log."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.access import console_view
from accounts.queries import people_summary


@require_GET
@console_view
def dashboard(request: HttpRequest) -> HttpResponse:
    enterprise = request.enterprise
    ctx = {"enterprise": enterprise, "people": people_summary(enterprise)}
    return render(request, "metrics/dashboard.html", ctx)
