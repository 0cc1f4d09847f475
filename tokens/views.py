"""Console pages for users and allocations (/org/users/...).

Every view goes through accounts.access.console_view and looks users up with
get_enterprise_user; every change is one call to tokens.services.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_tables2 import RequestConfig

from accounts.access import console_view, get_enterprise_user
from tokens import services
from tokens.filters import UserFilter
from tokens.forms import AddUserForm, AllocationForm, RoleForm
from tokens.queries import pool_totals, users_with_usage
from tokens.services import AllocationChange, Refused
from tokens.tables import UserTable

USERS_PER_PAGE = 25
# A save carries at most MAX_CHANGES_PER_SAVE small rows; anything bigger is not our page.
MAX_SAVE_BODY = 200_000
_STATUS_FOR = {"not_found": 404, "conflict": 409}


@require_GET
@console_view
def users(request: HttpRequest) -> HttpResponse:
    enterprise = request.enterprise
    filters = UserFilter(request.GET, queryset=users_with_usage(enterprise))
    table = UserTable(filters.qs, pools=pool_totals(enterprise))
    RequestConfig(request, paginate={"per_page": USERS_PER_PAGE}).configure(table)
    ctx = {"table": table, "filter": filters, "can_edit": request.user.can_edit_console}
    return render(request, "tokens/user_list.html", ctx)


def _json_error(status: int, code: str, error: str, rows: dict | None = None) -> JsonResponse:
    rows = {str(key): reason for key, reason in (rows or {}).items()}
    return JsonResponse({"ok": False, "code": code, "error": error, "rows": rows}, status=status)


def _read_changes(request: HttpRequest) -> list[AllocationChange] | JsonResponse:
    """The JSON body {"column": ..., "changes": [{"id", "value", "original"}]} or an error."""
    if request.content_type != "application/json":
        return _json_error(415, "unsupported_media_type", "Send the changes as application/json.")
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_SAVE_BODY:
        return _json_error(413, "too_large", "Too many changes in one save.")
    try:
        payload = json.loads(request.body)
        column, rows = payload["column"], payload["changes"]
        return [AllocationChange(int(r["id"]), column, r["value"], r["original"]) for r in rows]
    except (ValueError, KeyError, TypeError):
        return _json_error(400, "bad_request", "The save request was malformed. Reload the page.")


@require_POST
@console_view(write=True)
def allocations_save(request: HttpRequest) -> JsonResponse:
    """Save one column's pending inline edits, all or nothing."""
    changes = _read_changes(request)
    if isinstance(changes, JsonResponse):
        return changes
    try:
        applied = services.set_allocations(
            actor=request.user, enterprise=request.enterprise, changes=changes
        )
    except Refused as exc:
        return _json_error(_STATUS_FOR.get(exc.code, 422), exc.code, exc.message, exc.rows)
    saved = [{"id": a.user_id, "column": a.column, "old": a.old, "new": a.new} for a in applied]
    noun = "change" if len(saved) == 1 else "changes"
    return JsonResponse(
        {
            "ok": True,
            "saved": saved,
            "message": f"Saved {len(saved)} {noun}.",
            "pools": pool_totals(request.enterprise).as_dict(),
        }
    )


@require_http_methods(["GET", "POST"])
@console_view(write=True)
def user_add(request: HttpRequest) -> HttpResponse:
    form = AddUserForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            outcome = services.add_user(
                actor=request.user,
                enterprise=request.enterprise,
                email=form.cleaned_data["email"],
                signup_url=request.build_absolute_uri(reverse("accounts:register")),
            )
        except Refused as exc:
            form.add_error("email", exc.message)
        else:
            if outcome.invited:
                messages.success(request, f"Invitation sent to {outcome.email}.")
                return redirect("console:users")
            messages.success(request, f"{outcome.email} joined {request.enterprise.name}.")
            return redirect("console:user_detail", user_id=outcome.user.pk)
    return render(request, "tokens/user_add.html", {"form": form})


@require_http_methods(["GET", "POST"])
def user_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    """One user; without JavaScript, its POST edits the allocations like the table does."""
    if request.method == "POST":
        return _save_user_allocation(request, user_id)
    return _show_user(request, user_id)


@console_view
def _show_user(request: HttpRequest, user_id: int) -> HttpResponse:
    user = get_enterprise_user(request, user_id)
    return _render_user(request, user, AllocationForm.for_user(user))


def _render_user(
    request: HttpRequest, user, form: AllocationForm, status: int = 200
) -> HttpResponse:
    ctx = {
        "person": users_with_usage(request.enterprise).get(pk=user.pk),
        "form": form,
        "role_form": RoleForm(initial={"role": user.role}),
        "can_edit": request.user.can_edit_console,
        "pools": pool_totals(request.enterprise),
    }
    return render(request, "tokens/user_detail.html", ctx, status=status)


@console_view(write=True)
def _save_user_allocation(request: HttpRequest, user_id: int) -> HttpResponse:
    user = get_enterprise_user(request, user_id)
    form = AllocationForm.for_user(user, request.POST)
    if form.is_valid():
        try:
            applied = services.set_allocations(
                actor=request.user, enterprise=request.enterprise, changes=form.changes(user)
            )
        except Refused as exc:
            form.add_error(None, " ".join([exc.message, *map(str, exc.rows.values())]))
        else:
            messages.success(request, "Allocation saved." if applied else "Nothing changed.")
            return redirect("console:user_detail", user_id=user.pk)
    return _render_user(request, user, form, status=400)


@require_POST
@console_view(write=True)
def user_status(request: HttpRequest, user_id: int) -> HttpResponse:
    """Disable (Paid -> Banned) or activate (Banned -> Paid)."""
    user = get_enterprise_user(request, user_id)
    change = {"disable": services.disable_user, "activate": services.activate_user}
    action = request.POST.get("action", "")
    if action not in change:
        messages.error(request, "Choose disable or activate.")
        return redirect("console:user_detail", user_id=user.pk)
    try:
        change[action](actor=request.user, user=user)
    except Refused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{user.email} {action}d.")
    return redirect("console:user_detail", user_id=user.pk)


@require_POST
@console_view(write=True)
def user_role(request: HttpRequest, user_id: int) -> HttpResponse:
    user = get_enterprise_user(request, user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose member, admin or auditor.")
        return redirect("console:user_detail", user_id=user.pk)
    try:
        user = services.change_role(actor=request.user, user=user, role=form.cleaned_data["role"])
    except Refused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{user.email} is now {user.get_role_display().lower()}.")
    return redirect("console:user_detail", user_id=user.pk)
