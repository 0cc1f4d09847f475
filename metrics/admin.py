"""Staff admin for metrics: integrations and their keys (create, rotate, revoke) and
read-only ledgers.

Keys are created and revoked through metrics.keys, which writes the activity log; the
plaintext is shown once in a message and the digest is never displayed.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from accounts.models import User
from asksage_admin.core import formats
from asksage_admin.core.admin import ReadOnlyAdmin
from asksage_admin.core.admin_forms import ServiceAdminMixin, ServiceForm
from asksage_admin.core.errors import Refused
from metrics import keys
from metrics.models import (
    Integration,
    IntegrationKey,
    IntegrationKeyQuerySet,
    ReconcileRun,
    UsageAlert,
    UsageEvent,
)


class KeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "active":
            return cast(IntegrationKeyQuerySet, queryset).active()
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class IntegrationForm(ServiceForm):
    """Creating an integration issues its first key: one service call, shown once."""

    class Meta:
        model = Integration
        fields = ["name"]

    def apply(self) -> Integration:
        if self.instance.pk:  # nothing is editable once created
            return self.instance
        try:
            self.issued = keys.create_integration_key(
                actor=self.actor, name=self.cleaned_data["name"]
            )
        except ValidationError as exc:
            message = " ".join(exc.messages)
            raise Refused(message, rows={"name": message}) from None
        return self.issued[0].integration


class IntegrationKeyForm(ServiceForm):
    """A new key for an existing integration (rotation); its other keys stay live."""

    class Meta:
        model = IntegrationKey
        fields = ["integration"]

    def apply(self) -> IntegrationKey:
        if self.instance.pk:  # a key is immutable once issued
            return self.instance
        self.issued = keys.issue_key(actor=self.actor, integration=self.cleaned_data["integration"])
        return self.issued[0]


def _show_once(request: HttpRequest, form: Any) -> None:
    issued = getattr(form, "issued", None)
    if issued is None:
        return
    key, plaintext = issued
    messages.warning(
        request,
        f"Copy the new key for {key.name!r} now — it is not shown again: {plaintext}",
    )


class KeyInline(admin.TabularInline):
    model = IntegrationKey
    fields = ("prefix", "status", "created_at", "created_by", "last_used_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    @admin.display(description="Status")
    def status(self, obj: IntegrationKey) -> str:
        return "active" if obj.is_active else "revoked"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a key is issued by the service (see the action), never typed in


@admin.register(Integration)
class IntegrationAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = IntegrationForm
    list_display = ("name", "live_keys", "created_at", "created_by")
    search_fields = ("name",)
    inlines = [KeyInline]
    actions = ["issue_keys"]
    fields = ("name", "created_at", "created_by")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        live = Count("keys", filter=Q(keys__revoked_at__isnull=True))
        return super().get_queryset(request).annotate(live_key_count=live)

    @admin.display(description="Live keys", ordering="live_key_count")
    def live_keys(self, obj: Integration) -> int:
        return cast(Any, obj).live_key_count  # annotated by get_queryset

    def get_fields(self, request: HttpRequest, obj: Integration | None = None) -> Any:
        return ("name",) if obj is None else self.fields

    def get_inlines(self, request: HttpRequest, obj: Integration | None) -> list:
        return [] if obj is None else self.inlines  # the first key comes with the save

    def get_readonly_fields(self, request: HttpRequest, obj: Integration | None = None) -> Any:
        # The name is how operators and logs know the integration: fixed once created.
        return () if obj is None else self.fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # usage events point at their integration

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        saved = super().save_form(request, form, change)
        _show_once(request, form)
        return saved

    @admin.action(description="Issue a new key (rotation)", permissions=["change"])
    def issue_keys(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        for integration in queryset:
            key, plaintext = keys.issue_key(actor=cast(User, request.user), integration=integration)
            messages.warning(
                request,
                f"Copy the new key for {key.name!r} now — it is not shown again: {plaintext}",
            )


@admin.register(IntegrationKey)
class IntegrationKeyAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = IntegrationKeyForm
    list_display = ("integration", "prefix", "status", "created_at", "created_by", "last_used_at")
    list_filter = (KeyStatusFilter,)
    list_select_related = ("integration", "created_by")
    search_fields = ("integration__name", "prefix")
    actions = ["revoke_keys"]
    # Never "digest": it is the stored secret's fingerprint and has no use on a screen.
    fields = ("integration", "prefix", "created_at", "created_by", "last_used_at", "revoked_at")

    @admin.display(description="Status")
    def status(self, obj: IntegrationKey) -> str:
        return "active" if obj.is_active else "revoked"

    def get_fields(self, request: HttpRequest, obj: IntegrationKey | None = None) -> Any:
        return ("integration",) if obj is None else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: IntegrationKey | None = None) -> Any:
        # A key is immutable once issued: revoke it and issue a new one instead.
        return () if obj is None else self.fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revocation is the way out; the log names the key

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        saved = super().save_form(request, form, change)
        _show_once(request, form)
        return saved

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[IntegrationKey]) -> None:
        actor = cast(User, request.user)  # the staff admin serves signed-in staff only
        revoked = sum(keys.revoke_integration_key(actor=actor, key=k) for k in queryset)
        if not revoked:
            self.message_user(request, "No key was revoked: they were revoked already.")
            return
        self.message_user(
            request,
            f"Revoked {formats.count_of(revoked, 'key')}: requests signed with "
            f"{'it' if revoked == 1 else 'them'} are refused from now on.",
            messages.SUCCESS,
        )


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    list_display = (
        "event_id",
        "integration",
        "user",
        "enterprise",
        "kind",
        "tokens",
        "occurred_at",
        "month",
        "model",
    )
    list_filter = ("kind",)
    search_fields = ("event_id",)
    list_select_related = ("integration", "user", "enterprise")
    show_full_result_count = False


@admin.register(ReconcileRun)
class ReconcileRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "finished_at", "ok", "drift_count")


@admin.register(UsageAlert)
class UsageAlertAdmin(ReadOnlyAdmin):
    """The alert outbox: what was raised, whether it left, and the last delivery error."""

    list_display = (
        "created_at",
        "enterprise",
        "user",
        "pool",
        "threshold",
        "period",
        "used",
        "cap",
        "sent_at",
        "attempts",
        "next_attempt_at",
    )
    list_filter = ("pool", ("sent_at", admin.EmptyFieldListFilter))
    search_fields = ("user__email", "enterprise__name")
    list_select_related = ("enterprise", "user")
    show_full_result_count = False
