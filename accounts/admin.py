"""Staff admin (/staff/) for accounts. Enterprise, role, status and allocation change only
through the enterprise page and the console (tokens services), so they are read-only here."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.http import HttpRequest

from accounts.models import BackupCodeDevice, User


class StaffUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")


class StaffUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Accounts for staff. Enterprise, role, status and allocation change only through the
    enterprise page and the console (tokens.services), so they are read-only here."""

    form = StaffUserChangeForm
    add_form = StaffUserCreationForm
    list_display = ["email", "full_name", "enterprise", "role", "status", "is_staff"]
    list_filter = ["is_staff", "is_superuser", "role", "status", "enterprise"]
    list_select_related = ["enterprise"]
    search_fields = ["email", "full_name"]
    ordering = ["email"]
    filter_horizontal = ["groups", "user_permissions"]
    fieldsets = [
        (None, {"fields": ["email", "password", "full_name"]}),
        (
            "Organization",
            {
                "fields": [
                    "enterprise",
                    "role",
                    "status",
                    "max_inference_tokens",
                    "max_embedding_tokens",
                ]
            },
        ),
        ("Staff access", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "full_name", "password1", "password2"]}),
    ]
    _organization = ["enterprise", "role", "status", "max_inference_tokens"]
    _organization += ["max_embedding_tokens", "last_login", "date_joined"]

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> list[str]:
        if obj is None:
            return []
        readonly = list(self._organization)
        if not request.user.is_superuser:
            # Only a superuser hands out staff powers: sales staff cannot promote anyone.
            readonly += ["is_staff", "is_superuser", "groups"]
        return readonly

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(BackupCodeDevice)
class BackupCodeDeviceAdmin(admin.ModelAdmin):
    """Staff may see that a user has backup codes and remove the set (a lost phone and
    printout), never the codes or their hashes."""

    list_display = ["user", "name", "confirmed", "unused_codes", "last_used_at"]
    search_fields = ["user__email"]
    fields = ["user", "name", "confirmed", "unused_codes", "last_used_at"]
    readonly_fields = ["user", "unused_codes", "last_used_at"]
    list_select_related = ["user"]

    @admin.display(description="Unused codes")
    def unused_codes(self, obj: BackupCodeDevice) -> str:
        return f"{obj.codes.count()} unused"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
