"""Staff admin (/staff/) for accounts and MFA devices.

Enterprise, role, status and allocation change only through the enterprise page and the
console (tokens services), so they are read-only here. Every save and every device removal
is one call to accounts.services_staff, which writes the activity row.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django_otp.models import Device
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services_staff
from accounts.models import BackupCodeDevice, User
from asksage_admin.core.admin_forms import ServiceAdminMixin, ServiceForm


class StaffUserCreationForm(ServiceForm, AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")

    def apply(self) -> User:
        data = self.cleaned_data
        return services_staff.create_account(
            actor=self.actor,
            email=data["email"],
            full_name=data.get("full_name", ""),
            password=data["password1"] if data.get("set_usable_password") else None,
        )


class StaffUserChangeForm(ServiceForm, UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def apply(self) -> User:
        # Only the fields the admin left editable for this staff member are in the form.
        editable = services_staff.STAFF_FIELDS + services_staff.SUPERUSER_FIELDS
        changes = {name: self.cleaned_data[name] for name in editable if name in self.fields}
        groups = self.cleaned_data["groups"] if "groups" in self.fields else None
        return services_staff.update_account(
            actor=self.actor, user=self.instance, changes=changes, groups=groups
        )


@admin.register(User)
class UserAdmin(ServiceAdminMixin, DjangoUserAdmin):
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
    # The email is the sign-in and the password-reset address: changing it would hand the
    # account to whoever reads the new mailbox, so it is nobody's edit here.
    _organization += ["max_embedding_tokens", "last_login", "date_joined", "email"]

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> list[str]:
        if obj is None:
            return []
        readonly = list(self._organization)
        if not request.user.is_superuser:
            # Only a superuser hands out staff powers: sales staff cannot promote anyone.
            readonly += ["is_staff", "is_superuser", "groups"]
        return readonly

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return False

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        # Django's view sets the password; the activity row is written in the same transaction.
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                user = cast(User, self.get_object(request, unquote(id)))  # it was just saved
                services_staff.record_password_set(actor=cast(User, request.user), user=user)
        return response


class DeviceRemovalMixin:
    """MFA devices in /staff/: look (no secrets) and remove, never add or edit.

    Adding a device for someone else, or editing one, would let its author pass that
    person's second factor; removal resets their MFA (they enrol again) and is logged.
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Device) -> None:
        services_staff.remove_mfa_device(actor=cast(User, request.user), device=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        for device in queryset.select_related("user__enterprise"):
            services_staff.remove_mfa_device(actor=cast(User, request.user), device=device)


class StaffTOTPDeviceAdmin(DeviceRemovalMixin, TOTPDeviceAdmin):
    def get_fieldsets(self, request: HttpRequest, obj: TOTPDevice | None = None) -> Any:
        # Never the key, whatever OTP_ADMIN_HIDE_SENSITIVE_DATA says.
        return [
            (name, {"fields": [f for f in options["fields"] if f != "key"]})
            for name, options in super().get_fieldsets(request, obj)
        ]


class StaffStaticDeviceAdmin(DeviceRemovalMixin, StaticDeviceAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        # Backup codes moved to BackupCodeDevice (hashed); the old table stays empty, so
        # its section is not listed. Its URLs still answer, as refusals.
        return False

    def get_inline_instances(self, request: HttpRequest, obj: StaticDevice | None = None) -> list:
        return []  # the inline lists the backup codes themselves


for _model, _admin in ((TOTPDevice, StaffTOTPDeviceAdmin), (StaticDevice, StaffStaticDeviceAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)


@admin.register(BackupCodeDevice)
class BackupCodeDeviceAdmin(DeviceRemovalMixin, admin.ModelAdmin):
    """Staff may see that a user has backup codes and remove the set (a lost phone and
    printout, logged), never the codes or their hashes."""

    list_display = ["user", "name", "confirmed", "unused_codes", "last_used_at"]
    search_fields = ["user__email"]
    fields = ["user", "name", "confirmed", "unused_codes", "last_used_at"]
    readonly_fields = ["user", "unused_codes", "last_used_at"]
    list_select_related = ["user"]

    @admin.display(description="Unused codes")
    def unused_codes(self, obj: BackupCodeDevice) -> str:
        return f"{obj.codes.count()} unused"
