"""The Users page and a user's page: allocations next to usage, so they sit above both.

The allocation edits themselves are tokens services (tokens.views has the JSON save);
the no-JavaScript form on a user's page posts here and calls the same service.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods
from django_tables2 import RequestConfig

from accounts.access import ConsoleRequest, console_view, get_enterprise_user
from accounts.models import User
from accounts.stepup import step_up_required
from asksage_admin.core.errors import Refused
from asksage_admin.core.filters import filtered_like, filtered_rows
from asksage_admin.core.replica import replica_reads
from metrics import forecast
from metrics.blocking import explain
from metrics.pagination import SplitPaginator
from metrics.quota import usage_snapshot
from metrics.user_usage import runs_out_order, usage_split, users_with_usage
from tokens import pool
from tokens.filters import UserFilter
from tokens.forms import AllocationForm, RoleForm, TemporaryForm
from tokens.models import Invitation
from tokens.queries import pool_totals
from tokens.tables import UserTable

USERS_PER_PAGE = 25
INVITATIONS_PER_PAGE = 10


@require_GET
@console_view
@replica_reads
def users(request: ConsoleRequest) -> HttpResponse:
    enterprise = request.enterprise
    now = timezone.now()  # one "this month" for the rows and the usage sorts' index reads
    filters = UserFilter(request.GET, queryset=users_with_usage(enterprise, now))
    # Counted without the usage columns (see NearEndPaginator's count_rows).
    counted = filtered_like(filters, User.objects.in_enterprise(enterprise))
    pools = pool_totals(enterprise)
    searched = [filters.data.get(name, "") for name in filters.filters]  # not page, not sort
    table = UserTable(filtered_rows(filters), pools=pools)
    # Usage sorts read the roll-ups' indexes in two parts (zero, above zero): see usage_split.
    paginate = {
        "per_page": USERS_PER_PAGE,
        "paginator_class": SplitPaginator,
        "split": usage_split(enterprise, now),
        "seek": request.GET.get("seek", ""),  # Next / Previous: read after / before a row
        # Sorted by Runs out, the order is computed once a minute (see runs_out_order).
        "ids_in_order": runs_out_order(enterprise, now, version=(pools.as_dict(), searched)),
        "count_rows": counted,
    }
    RequestConfig(request, paginate=paginate).configure(table)
    ctx = {
        "table": table,
        "filter": filters,
        "can_edit": request.user.can_edit_console,
        "invitations": _invitations_page(request),
        "forecast_method": forecast.METHOD,
    }
    return render(request, "tokens/user_list.html", ctx)


def _invitations_page(request: ConsoleRequest) -> Page:
    """A page of pending invitations, soonest to expire first: after a bulk add there can be
    thousands (1,600 rendered in full took the Users page from ~23 to ~250 ms)."""
    pending = (
        Invitation.objects.pending(request.enterprise)
        .select_related("invited_by")
        .order_by("expires_at", "pk")
    )
    paginator = Paginator(pending, INVITATIONS_PER_PAGE)
    if not paginator.count:
        # None pending (most visits): the count says so; an empty slice would still cost
        # the ORM a compiled query (~0.5 ms) only to find it empty.
        return Page([], 1, paginator)
    # get_page: a missing, non-numeric or out-of-range number gives the first or last page.
    return paginator.get_page(request.GET.get("invitations"))


@require_http_methods(["GET", "POST"])
def user_detail(request: ConsoleRequest, user_id: int) -> HttpResponse:
    """One user; without JavaScript, its POST edits the allocations like the table does."""
    if request.method == "POST":
        return _save_user_allocation(request, user_id)
    return _show_user(request, user_id)


@console_view
def _show_user(request: ConsoleRequest, user_id: int) -> HttpResponse:
    user = get_enterprise_user(request, user_id)
    return _render_user(request, user, AllocationForm.for_user(user))


def _render_user(
    request: ConsoleRequest, user: User, form: AllocationForm, status: int = 200
) -> HttpResponse:
    user.enterprise = request.enterprise  # the same row: saves the snapshot a query
    ctx = {
        "person": users_with_usage(request.enterprise).get(pk=user.pk),
        "form": form,
        "role_form": RoleForm(initial={"role": user.role}),
        "temporary_form": TemporaryForm(),
        "can_edit": request.user.can_edit_console,
        "pools": pool_totals(request.enterprise),
        "explanation": explain(user, usage_snapshot(user)),
        "block_audience": "admin" if request.user.can_edit_console else "auditor",
    }
    return render(request, "tokens/user_detail.html", ctx, status=status)


@console_view(write=True)
@step_up_required
def _save_user_allocation(request: ConsoleRequest, user_id: int) -> HttpResponse:
    user = get_enterprise_user(request, user_id)
    form = AllocationForm.for_user(user, request.POST)
    if form.is_valid():
        try:
            applied = pool.set_allocations(
                actor=request.user, enterprise=request.enterprise, changes=form.changes(user)
            )
        except Refused as exc:
            form.add_error(None, " ".join([exc.message, *map(str, exc.rows.values())]))
        else:
            messages.success(request, "Allocation saved." if applied else "Nothing changed.")
            return redirect("console:user_detail", user_id=user.pk)
    return _render_user(request, user, form, status=400)
