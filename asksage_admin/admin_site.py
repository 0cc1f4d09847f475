"""The sales-staff admin at /staff/: staff accounts only, and only after TOTP verification."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache

from accounts import services
from accounts.stepup import step_up_required

# Section names on the staff index, in words staff use (Django's are the app labels).
SECTION_NAMES = {
    "auth": "Staff groups",
    "otp_totp": "Two-factor authentication",
}
MODEL_NAMES = {"TOTPDevice": "Authenticator apps"}


class StaffAdminSite(admin.AdminSite):
    site_header = "AskSage Enterprise Admin — Staff"
    site_title = "AskSage staff"
    index_title = "Provisioning"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        apps = super().get_app_list(request, app_label)
        for app in apps:
            app["name"] = SECTION_NAMES.get(app["app_label"], app["name"])
            for model in app["models"]:
                model["name"] = MODEL_NAMES.get(model["object_name"], model["name"])
        return apps

    def has_permission(self, request: HttpRequest) -> bool:
        # MFARequiredMiddleware already redirects unverified staff; this is the second lock.
        user = request.user
        return super().has_permission(request) and user.is_authenticated and user.is_verified()

    def admin_view(self, view: Any, cacheable: bool = False) -> Any:
        inner = super().admin_view(view, cacheable)
        if getattr(view, "__name__", "") != "logout":
            # Every staff write moves money or access (enterprises, activation, purchases,
            # integration keys, accounts): like the console's, it needs a recent code.
            inner = step_up_required(inner)

        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            # Someone signed in without staff access is not asked to sign in again (that
            # would look like a wrong password): they are told no, with a way back.
            user = request.user
            if user.is_authenticated and not (user.is_active and user.is_staff):
                return _not_staff(request)
            return inner(request, *args, **kwargs)

        return guarded

    def logout(self, request: HttpRequest, extra_context: Any = None) -> Any:
        # Same activity row as the console's sign-out; LogoutView signs out on POST only.
        if request.method == "POST" and request.user.is_authenticated:
            services.record_sign_out(request.user)
        return super().logout(request, extra_context)


@never_cache
def _not_staff(request: HttpRequest) -> HttpResponse:
    message = "The staff admin is for AskSage staff. Your account does not have access to it."
    body = render_to_string("403.html", {"exception": message}, request=request)
    return HttpResponseForbidden(body)
