"""Staff admin for the activity log: read-only for everyone, superusers included."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from asksage_admin.core.models import ActivityLog


class ReadOnlyAdmin(admin.ModelAdmin):
    """Ledgers and logs: staff may look, nobody may add, edit or delete a row here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ActivityLog)
class ActivityLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_email", "enterprise", "action", "target", "ip_address")
    list_filter = ("action",)
    search_fields = ("actor_email", "target")
    date_hierarchy = "created_at"
    list_select_related = ("enterprise",)
    show_full_result_count = False  # COUNT(*) over the whole log on every page is wasted
