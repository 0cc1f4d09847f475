"""The sales-staff admin at /staff/: staff accounts only, and only after TOTP verification."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest


class StaffAdminSite(admin.AdminSite):
    site_header = "AskSage Enterprise Admin — Staff"
    site_title = "AskSage staff"
    index_title = "Provisioning"

    def has_permission(self, request: HttpRequest) -> bool:
        # MFARequiredMiddleware already redirects unverified staff; this is the second lock.
        user = request.user
        return super().has_permission(request) and user.is_authenticated and user.is_verified()
