"""Staff admin for metrics: integrations and their keys (create, rotate, revoke) and
read-only ledgers.

Keys are created and revoked through metrics.keys, which writes the activity log; the
plaintext is shown once in a message and the digest is never displayed.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from accounts.models import User
from asksage_admin.core.admin import ReadOnlyAdmin
from metrics import keys
from metrics.models import (
    Integration,
    IntegrationKey,
    IntegrationKeyQuerySet,
    ReconcileRun,
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


def _adopt(obj: Any, saved: Any) -> None:
    """The admin goes on to log and redirect with `obj`: make it the row the service saved."""
    obj.__dict__.update({f.attname: getattr(saved, f.attname) for f in saved._meta.concrete_fields})
    obj._state.adding, obj._state.db = False, saved._state.db


def _show_once(request: HttpRequest, key: IntegrationKey, plaintext: str) -> None:
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
class IntegrationAdmin(admin.ModelAdmin):
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

    def save_model(self, request: HttpRequest, obj: Integration, form: Any, change: bool) -> None:
        if change:
            return
        # The form already refused a taken name (the model's unique constraint).
        key, plaintext = keys.create_integration_key(
            actor=cast(User, request.user),  # the staff admin serves signed-in staff only
            name=form.cleaned_data["name"],
        )
        _adopt(obj, key.integration)
        _show_once(request, key, plaintext)

    @admin.action(description="Issue a new key (rotation)", permissions=["change"])
    def issue_keys(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        for integration in queryset:
            key, plaintext = keys.issue_key(actor=cast(User, request.user), integration=integration)
            _show_once(request, key, plaintext)


@admin.register(IntegrationKey)
class IntegrationKeyAdmin(admin.ModelAdmin):
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

    def save_model(
        self, request: HttpRequest, obj: IntegrationKey, form: Any, change: bool
    ) -> None:
        if change:
            return
        key, plaintext = keys.issue_key(
            actor=cast(User, request.user), integration=form.cleaned_data["integration"]
        )
        _adopt(obj, key)
        _show_once(request, key, plaintext)

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[IntegrationKey]) -> None:
        actor = cast(User, request.user)  # the staff admin serves signed-in staff only
        revoked = sum(keys.revoke_integration_key(actor=actor, key=k) for k in queryset)
        self.message_user(request, f"{revoked} key(s) revoked.", messages.SUCCESS)


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
