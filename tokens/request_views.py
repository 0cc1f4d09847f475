"""Usage-increase requests (the member's ask on /settings/, the admins' Requests page) and
temporary allocations on a user's page. Input is parsed here; tokens.usage_requests and
tokens.temporary decide.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.access import ConsoleRequest, SignedInRequest, console_view, get_enterprise_user
from accounts.stepup import step_up_required
from asksage_admin.core.errors import Refused
from asksage_admin.core.formats import day
from tokens import temporary, usage_requests
from tokens.forms import ApproveForm, DeclineForm, TemporaryForm, UsageRequestForm
from tokens.models import UsageRequest
from tokens.queries import pool_totals

OPEN_SHOWN = 200
DECIDED_SHOWN = 25


def _form_errors(form: forms.Form) -> str:
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        text = " ".join(map(str, errors))
        parts.append(f"{label}: {text}" if label else text)
    return " ".join(parts)


@require_POST
@login_required
def ask(request: SignedInRequest) -> HttpResponse:
    """A person asks for more tokens from their Settings page."""
    form = UsageRequestForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Your request was not sent. {_form_errors(form)}")
    else:
        data = form.cleaned_data
        try:
            usage_requests.ask(
                user=request.user,
                pool_name=data["pool"],
                amount=data["amount"],
                reason=data["reason"],
                until=data["until"],
            )
        except Refused as exc:
            messages.error(request, f"Your request was not sent. {exc.message}")
        else:
            messages.success(request, "Request sent. Your admins will answer it here.")
    return redirect(reverse("settings") + "#requests")


@dataclass(frozen=True)
class OpenRow:
    request: UsageRequest
    approve: ApproveForm
    decline: DeclineForm
    pool_left: int  # in the request's pool, after giving the amount asked

    @property
    def short(self) -> int:
        return max(0, -self.pool_left)


@require_GET
@console_view
def requests_page(request: ConsoleRequest) -> HttpResponse:
    """Open requests with the pool left after each, and the latest decisions."""
    enterprise = request.enterprise
    pools = pool_totals(enterprise)
    unassigned = {"inference": pools.inference.unassigned, "embedding": pools.training.unassigned}
    mine = UsageRequest.objects.filter(enterprise=enterprise)
    open_requests = mine.filter(status=UsageRequest.Status.OPEN).select_related("user")
    rows = [
        OpenRow(
            r,
            ApproveForm(
                initial={"amount": f"{r.amount:,}", "until": r.until}, prefix=f"approve-{r.pk}"
            ),
            DeclineForm(prefix=f"decline-{r.pk}"),
            unassigned[r.pool] - r.amount,
        )
        for r in open_requests.order_by("created_at", "id")[:OPEN_SHOWN]
    ]
    decided = (
        mine.exclude(status=UsageRequest.Status.OPEN)
        .select_related("user", "decided_by")
        .order_by("-decided_at", "-id")[:DECIDED_SHOWN]
    )
    ctx = {
        "rows": rows,
        "decided": decided,
        "pools": pools,
        "can_edit": request.user.can_edit_console,
    }
    return render(request, "tokens/requests.html", ctx)


def _enterprise_request(request: ConsoleRequest, request_id: int) -> UsageRequest:
    """A request of the request's enterprise; anyone else's id is a 404."""
    return get_object_or_404(UsageRequest, pk=request_id, enterprise=request.enterprise)


@require_POST
@console_view(write=True)
@step_up_required
def approve(request: ConsoleRequest, request_id: int) -> HttpResponse:
    found = _enterprise_request(request, request_id)
    form = ApproveForm(request.POST, prefix=f"approve-{found.pk}")
    if not form.is_valid():
        messages.error(request, f"Nothing was approved. {_form_errors(form)}")
        return redirect("console:usage_requests")
    try:
        done = usage_requests.approve(
            actor=request.user,
            enterprise=request.enterprise,
            request_id=found.pk,
            amount=form.cleaned_data["amount"],
            until=form.cleaned_data["until"],
            note=form.cleaned_data["note"],
        )
    except Refused as exc:
        messages.error(request, f"Nothing was approved. {exc.message}")
    else:
        messages.success(
            request,
            f"Approved {done.approved_amount:,} {done.pool} tokens for {done.user.email}; "
            "they were emailed.",
        )
    return redirect("console:usage_requests")


@require_POST
@console_view(write=True)
def decline(request: ConsoleRequest, request_id: int) -> HttpResponse:
    found = _enterprise_request(request, request_id)
    form = DeclineForm(request.POST, prefix=f"decline-{found.pk}")
    if not form.is_valid():
        messages.error(request, "Give the person a reason to decline.")
        return redirect("console:usage_requests")
    try:
        done = usage_requests.decline(
            actor=request.user,
            enterprise=request.enterprise,
            request_id=found.pk,
            note=form.cleaned_data["note"],
        )
    except Refused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Declined the request of {done.user.email}; they were emailed.")
    return redirect("console:usage_requests")


@require_POST
@console_view(write=True)
@step_up_required
def temporary_grant(request: ConsoleRequest, user_id: int) -> HttpResponse:
    user = get_enterprise_user(request, user_id)
    form = TemporaryForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Nothing was given. {_form_errors(form)}")
        return redirect("console:user_detail", user_id=user.pk)
    try:
        row = temporary.grant(
            actor=request.user,
            enterprise=request.enterprise,
            user_id=user.pk,
            extra=form.cleaned_data["extra"],
            until=form.cleaned_data["until"],
        )
    except Refused as exc:
        messages.error(request, f"Nothing was given. {exc.message}")
    else:
        messages.success(
            request,
            f"{user.email} has +{row.extra_inference:,} inference tokens until the end of "
            f"{day(row.until)} ({request.enterprise.time_zone}).",
        )
    return redirect("console:user_detail", user_id=user.pk)


@require_POST
@console_view(write=True)
@step_up_required
def temporary_end(request: ConsoleRequest, user_id: int) -> HttpResponse:
    user = get_enterprise_user(request, user_id)
    try:
        temporary.end_early(actor=request.user, enterprise=request.enterprise, user_id=user.pk)
    except Refused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The temporary allocation of {user.email} ended now.")
    return redirect("console:user_detail", user_id=user.pk)
