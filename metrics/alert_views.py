"""The Notifications page: admins choose usage-alert thresholds and recipients.

Auditors see the same page read-only; a POST from them is refused by console_view.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.access import ConsoleRequest, console_view
from asksage_admin.core.errors import Refused
from metrics import alerts
from metrics.forms import AlertSettingsForm


@require_http_methods(["GET", "POST"])
def notifications(request: ConsoleRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request)
    return _show(request)


@console_view
def _show(request: ConsoleRequest) -> HttpResponse:
    chosen = alerts.settings_for(request.enterprise)
    return _render(request, AlertSettingsForm.for_settings(chosen))


@console_view(write=True)
def _save(request: ConsoleRequest) -> HttpResponse:
    form = AlertSettingsForm.for_settings(alerts.settings_for(request.enterprise), request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            alerts.update_settings(
                actor=request.user,
                enterprise=request.enterprise,
                enabled=data["enabled"],
                thresholds=data["thresholds"],
                recipients=data["recipients"],
                extra_emails=data["extra_emails"],
            )
        except Refused as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Notification settings saved.")
            return redirect("console:notifications")
    return _render(request, form, status=422)


def _render(request: ConsoleRequest, form: AlertSettingsForm, status: int = 200) -> HttpResponse:
    can_edit = request.user.can_edit_console
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    ctx = {
        "form": form,
        "can_edit": can_edit,
        "recent": alerts.recent_alerts(request.enterprise, limit=10),
    }
    return render(request, "metrics/notifications.html", ctx, status=status)
