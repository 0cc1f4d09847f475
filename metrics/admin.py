"""Staff admin for metrics: integration keys (create, revoke) and read-only ledgers.

Keys are created and revoked through metrics.services, which writes the activity log; the
plaintext is shown once in a message and the digest is never displayed.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import User
from asksage_admin.core.admin import ReadOnlyAdmin
from metrics import keys
from metrics.models import IntegrationKey, IntegrationKeyQuerySet, ReconcileRun, UsageEvent


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


@admin.register(IntegrationKey)
class IntegrationKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "status", "created_at", "created_by", "last_used_at")
    list_filter = (KeyStatusFilter,)
    search_fields = ("name", "prefix")
    actions = ["revoke_keys"]
    # Never "digest": it is the stored secret's fingerprint and has no use on a screen.
    fields = ("name", "prefix", "created_at", "created_by", "last_used_at", "revoked_at")

    @admin.display(description="Status")
    def status(self, obj: IntegrationKey) -> str:
        return "active" if obj.is_active else "revoked"

    def get_fields(
        self, request: HttpRequest, obj: IntegrationKey | None = None
    ) -> tuple[str, ...]:
        return ("name",) if obj is None else self.fields

    def get_readonly_fields(
        self, request: HttpRequest, obj: IntegrationKey | None = None
    ) -> tuple[str, ...]:
        # A key is immutable once issued: revoke it and issue a new one instead.
        return () if obj is None else self.fields

    def has_delete_permission(
        self, request: HttpRequest, obj: IntegrationKey | None = None
    ) -> bool:
        return False  # usage events point at their key; revocation is the way out

    def save_model(
        self, request: HttpRequest, obj: IntegrationKey, form: Any, change: bool
    ) -> None:
        if change:
            return
        # The form already refused a taken name (the model's unique constraint).
        key, plaintext = keys.create_integration_key(
            actor=cast(User, request.user),  # the staff admin serves signed-in staff only
            name=form.cleaned_data["name"],
        )
        # The admin goes on to log and redirect with `obj`: make it the created row.
        obj.__dict__.update({f.attname: getattr(key, f.attname) for f in key._meta.concrete_fields})
        obj._state.adding, obj._state.db = False, key._state.db
        messages.warning(
            request,
            f"Copy the key for {key.name!r} now — it is not shown again: {plaintext}",
        )

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
