"""Console writes for users and allocations, and the invitation page people accept from.

Every console view goes through accounts.access.console_view and looks users up with
get_enterprise_user; input is parsed here (forms, the JSON body) and every change is one
call to a tokens service. The pages that show usage live in metrics.user_views.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import ConsoleRequest, console_view, get_enterprise_user
from accounts.stepup import step_up_required
from asksage_admin.core.errors import Refused, json_error, refusal_response
from asksage_admin.core.fields import parse_token_count
from tokens import bulk, invitations, membership, pool
from tokens.forms import AddUserForm, BulkAddForm, RoleForm
from tokens.models import Invitation
from tokens.pool import AllocationChange
from tokens.queries import pool_totals

# A save carries at most MAX_CHANGES_PER_SAVE small rows; anything bigger is not our page.
MAX_SAVE_BODY = 200_000


class BadSave(Exception):
    def __init__(self, message: str, rows: dict[Any, str] | None = None) -> None:
        super().__init__(message)
        self.message, self.rows = message, rows or {}


def _parse_change(row: Any, column: str) -> AllocationChange:
    """One {"id", "value", "original"} object; `original` is required (conflict detection)."""
    if not isinstance(row, dict) or isinstance(row.get("id"), bool):
        raise BadSave("Each change must be an object with id, value and original.")
    try:
        user_id = int(row["id"])
    except (KeyError, TypeError, ValueError):
        raise BadSave("Each change needs the id of a user.") from None
    if row.get("original") is None:
        raise BadSave(
            "A change is missing the value it was loaded with. Reload the page.",
            {user_id: "Missing the loaded value."},
        )
    try:
        value = parse_token_count(row.get("value"))
        original = parse_token_count(row["original"])
    except ValueError as exc:
        raise BadSave("Nothing was saved: fix the marked rows.", {user_id: str(exc)}) from None
    return AllocationChange(user_id, column, value, original)


def _read_changes(request: HttpRequest) -> list[AllocationChange]:
    """The JSON body {"column": ..., "changes": [{"id", "value", "original"}]}, parsed."""
    try:
        payload = json.loads(request.body)
    except ValueError:
        raise BadSave("The save request was malformed. Reload the page.") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("changes"), list):
        raise BadSave("The save request was malformed. Reload the page.")
    column = payload.get("column")
    if column not in pool.COLUMNS:
        raise BadSave("Only Max Inference Tokens and Max Embedding Tokens can be edited.")
    changes, rows = [], {}
    for row in payload["changes"]:
        try:
            changes.append(_parse_change(row, column))
        except BadSave as exc:
            if not exc.rows:
                raise
            rows.update(exc.rows)
    if rows:
        raise BadSave("Nothing was saved: fix the marked rows.", rows)
    return changes


@require_POST
@console_view(write=True)
@step_up_required
def allocations_save(request: ConsoleRequest) -> JsonResponse:
    """Save one column's pending inline edits, all or nothing."""
    if request.content_type != "application/json":
        return json_error(415, "unsupported_media_type", "Send the changes as application/json.")
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_SAVE_BODY:
        return json_error(413, "too_large", "Too many changes in one save.")
    try:
        changes = _read_changes(request)
        applied = pool.set_allocations(
            actor=request.user, enterprise=request.enterprise, changes=changes
        )
    except BadSave as exc:
        return json_error(400, "bad_request", exc.message, rows=exc.rows)
    except Refused as exc:
        return refusal_response(exc)
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
def user_add(request: ConsoleRequest) -> HttpResponse:
    """One person (an invitation), or many: a bulk preview that changes nothing, then the
    import. The preview takes no step-up check, so an uploaded file is never lost to one."""
    try:
        step = request.POST.get("step", "")
    except RequestDataTooBig:
        return _add_page(request, bulk_error="The pasted text is larger than 5 MB. " + UNCHANGED)
    if request.method == "GET":
        return _add_page(request)
    if step == "import":
        return _import_apply(request)
    if step != "preview":
        return _add_one(request)
    form = BulkAddForm(request.POST, request.FILES)
    if not form.is_valid():
        return _add_page(request, bulk_form=form)
    try:
        rows = _read_bulk(form)
    except bulk.BadFile as exc:
        return _add_page(request, bulk_form=form, bulk_error=f"{exc.message} {UNCHANGED}")
    return _preview_page(request, rows)


UNCHANGED = "Nothing was changed."


def _preview_page(request: ConsoleRequest, rows: list[bulk.Row]) -> HttpResponse:
    """What the import would do, with the list and its seal for the Import button."""
    text = bulk.canonical_text(rows)
    planned = bulk.plan(request.enterprise, rows)
    sealed = bulk.seal(
        actor=request.user, enterprise=request.enterprise, text=text, planned=planned
    )
    ctx = {
        "plan": planned,
        "text": text,
        "seal": sealed,
        "counts": [
            {"label": label, "count": planned.counts[status], "css": f"bulk-badge-{status}"}
            for status, label in bulk.STATUS_LABELS.items()
            if planned.counts[status]
        ],
        "pools": [
            ("Inference (monthly)", planned.pools["inference"]),
            ("Training (lifetime)", planned.pools["training"]),
        ],
    }
    return render(request, "tokens/user_import_preview.html", ctx)


def _read_bulk(form: BulkAddForm) -> list[bulk.Row]:
    upload = form.cleaned_data.get("file")
    if upload is None:
        return bulk.parse_paste(form.cleaned_data["emails"])
    if upload.size > bulk.MAX_BYTES:
        raise bulk.BadFile("The file is larger than 5 MB. Split it and import the parts.")
    return bulk.parse_csv(bulk.read_upload(upload.read()))


def _add_page(
    request: ConsoleRequest,
    *,
    form: AddUserForm | None = None,
    bulk_form: BulkAddForm | None = None,
    bulk_error: str = "",
) -> HttpResponse:
    ctx = {
        "form": form or AddUserForm(),
        "bulk_form": bulk_form or BulkAddForm(),
        "bulk_error": bulk_error,
    }
    status = 400 if bulk_error else 200
    return render(request, "tokens/user_add.html", ctx, status=status)


@step_up_required
def _add_one(request: ConsoleRequest) -> HttpResponse:
    form = AddUserForm(request.POST)
    if form.is_valid():
        try:
            outcome = invitations.add_user(
                actor=request.user,
                enterprise=request.enterprise,
                email=form.cleaned_data["email"],
                link_for=_invitation_link(request),
            )
        except Refused as exc:
            form.add_error("email", exc.message)
        else:
            # The same words whoever the address belongs to: the page reveals nothing.
            messages.success(
                request,
                f"Invitation sent to {outcome.email}. They join {request.enterprise.name} "
                "when they accept it.",
            )
            return redirect("console:users")
    return _add_page(request, form=form)


@step_up_required
def _import_apply(request: ConsoleRequest) -> HttpResponse:
    # A browser sends a form field's line breaks as CRLF; the seal was made over LF.
    text = request.POST.get("text", "").replace("\r\n", "\n")
    sealed = request.POST.get("seal", "")
    try:
        snapshot = bulk.unseal(
            actor=request.user, enterprise=request.enterprise, text=text, sealed=sealed
        )
        done = bulk.import_rows(
            actor=request.user,
            enterprise=request.enterprise,
            text=text,
            snapshot=snapshot,
            link_for=_invitation_link(request),
        )
    except bulk.BadFile as exc:
        return _add_page(request, bulk_error=f"{exc.message} {UNCHANGED}")
    except Refused as exc:
        return _add_page(request, bulk_error=exc.message)
    messages.success(
        request,
        f"Import done: {done.invited} invited, {done.updated} members updated, "
        f"{done.unchanged} unchanged, {done.skipped} rows skipped. Invited people join "
        f"{request.enterprise.name} when they accept.",
    )
    return redirect("console:users")


@require_POST
@console_view(write=True)
@step_up_required
def user_status(request: ConsoleRequest, user_id: int) -> HttpResponse:
    """Disable (Paid -> Banned) or activate (Banned -> Paid)."""
    user = get_enterprise_user(request, user_id)
    change = {"disable": membership.disable_user, "activate": membership.activate_user}
    action = request.POST.get("action", "")
    if action not in change:
        messages.error(request, "Choose disable or activate.")
        return redirect("console:user_detail", user_id=user.pk)
    try:
        change[action](actor=request.user, user=user)
    except Refused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _STATUS_DONE[action].format(email=user.email))
    return redirect("console:user_detail", user_id=user.pk)


_STATUS_DONE = {
    "disable": "{email} is disabled: status Banned (disabled). They were signed out.",
    "activate": "{email} is active again: status Paid.",
}


@require_GET
@console_view(write=True)
def user_disable_confirm(request: ConsoleRequest, user_id: int) -> HttpResponse:
    """The question before a disable: it signs the person out at once, so no one-click accident."""
    user = get_enterprise_user(request, user_id)
    if user.is_banned:
        return redirect("console:user_detail", user_id=user.pk)
    return render(request, "tokens/user_disable_confirm.html", {"person": user})


def _invitation_link(request: HttpRequest) -> Callable[[str], str]:
    return lambda token: request.build_absolute_uri(reverse("invitation", args=[token]))


def _get_enterprise_invitation(request: ConsoleRequest, invitation_id: int) -> Invitation:
    """An invitation of the request's enterprise; anyone else's id is a 404."""
    return get_object_or_404(Invitation, pk=invitation_id, enterprise=request.enterprise)


@require_POST
@console_view(write=True)
@step_up_required
def invitation_resend(request: ConsoleRequest, invitation_id: int) -> HttpResponse:
    found = _get_enterprise_invitation(request, invitation_id)
    try:
        done = invitations.resend_invitation(
            actor=request.user, invitation=found, link_for=_invitation_link(request)
        )
    except Refused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"New invitation sent to {done.email}; the old link no longer works."
        )
    return redirect(reverse("console:users") + "#pending-invitations")


@require_POST
@console_view(write=True)
@step_up_required
def invitation_revoke(request: ConsoleRequest, invitation_id: int) -> HttpResponse:
    found = _get_enterprise_invitation(request, invitation_id)
    try:
        done = invitations.revoke_invitation(actor=request.user, invitation=found)
    except Refused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Invitation to {done.email} revoked; its link no longer works.")
    return redirect(reverse("console:users") + "#pending-invitations")


@require_POST
@console_view(write=True)
@step_up_required
def user_role(request: ConsoleRequest, user_id: int) -> HttpResponse:
    user = get_enterprise_user(request, user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose member, admin or auditor.")
        return redirect("console:user_detail", user_id=user.pk)
    try:
        user = membership.change_role(actor=request.user, user=user, role=form.cleaned_data["role"])
    except Refused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{user.email} is now {user.get_role_display().lower()}.")
    return redirect("console:user_detail", user_id=user.pk)


@never_cache
@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link: sign in or register as the invited address, then accept or decline."""
    found = invitations.open_invitation(token)
    if not request.user.is_authenticated:
        here = request.get_full_path()
        query = urlencode({"next": here, **({"email": found.email} if found else {})})
        ctx: dict[str, Any] = {
            "invitation": found,
            "login_url": f"{reverse('accounts:login')}?{query}",
        }
        ctx["register_url"] = f"{reverse('accounts:register')}?{query}"
        return render(request, "tokens/invitation.html", ctx)
    if request.method == "POST":
        decide = {
            "accept": invitations.accept_invitation,
            "decline": invitations.decline_invitation,
        }
        choice = decide.get(request.POST.get("decision", ""))
        if choice is None:
            messages.error(request, "Choose accept or decline.")
            return redirect("invitation", token=token)
        try:
            enterprise = choice(user=request.user, token=token)
        except Refused as exc:
            messages.error(request, exc.message)
            return redirect("invitation", token=token)
        accepted = choice is invitations.accept_invitation
        verb = "joined" if accepted else "declined the invitation to"
        messages.success(request, f"You {verb} {enterprise.name}.")
        return redirect("settings")
    ctx = {
        "invitation": found,
        "for_someone_else": bool(found and found.email != request.user.email),
    }
    return render(request, "tokens/invitation.html", ctx)
