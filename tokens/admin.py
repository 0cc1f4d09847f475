"""Staff admin for the purchase ledger: add and view only, through tokens.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect

from tokens import services
from tokens.models import TokenPurchase


class TokenPurchaseForm(forms.ModelForm):
    class Meta:
        model = TokenPurchase
        fields = ["enterprise", "inference_tokens", "training_tokens", "purchased_on", "reference"]
        fields += ["note"]

    def clean(self) -> dict:
        data = super().clean()
        enterprise = data.get("enterprise")
        if enterprise is not None and not self.errors:
            try:
                services.check_purchase(
                    enterprise, data.get("inference_tokens") or 0, data.get("training_tokens") or 0
                )
            except services.Refused as exc:
                for name, reason in exc.rows.items():
                    self.add_error(None if name == "__all__" else name, reason or exc.message)
        return data


@admin.register(TokenPurchase)
class TokenPurchaseAdmin(admin.ModelAdmin):
    """The ledger is append-only: a correction is a new (negative) line, never an edit."""

    form = TokenPurchaseForm
    list_display = [
        "enterprise",
        "purchased_on",
        "reference",
        "inference_tokens",
        "training_tokens",
        "recorded_by",
        "recorded_at",
    ]
    list_filter = ["enterprise"]
    search_fields = ["reference", "enterprise__name"]
    list_select_related = ["enterprise", "recorded_by"]
    date_hierarchy = "purchased_on"

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: TokenPurchase, form, change: bool) -> None:
        data = form.cleaned_data
        try:
            saved = services.record_purchase(
                actor=request.user,
                enterprise=data["enterprise"],
                inference_tokens=data["inference_tokens"],
                training_tokens=data["training_tokens"],
                reference=data["reference"],
                purchased_on=data["purchased_on"],
                note=data.get("note", ""),
            )
        except services.Refused as exc:  # a race with an allocation change since clean()
            messages.error(request, f"Purchase not recorded: {exc.message}")
            return
        # The admin goes on to log and redirect with `obj`: make it the row just written.
        obj.pk, obj.recorded_by, obj.recorded_at = saved.pk, saved.recorded_by, saved.recorded_at
        obj._state.adding = False

    def log_addition(self, request: HttpRequest, obj: TokenPurchase, message):
        return super().log_addition(request, obj, message) if obj.pk else None

    def response_add(self, request: HttpRequest, obj: TokenPurchase, *args, **kwargs):
        if obj.pk is None:  # refused in save_model: back to the form, the message says why
            return HttpResponseRedirect(request.get_full_path())
        return super().response_add(request, obj, *args, **kwargs)


class PurchaseInline(admin.TabularInline):
    """The ledger on the enterprise page, read-only; new lines go through Add purchase."""

    model = TokenPurchase
    fields = ["purchased_on", "reference", "inference", "training", "note", "recorded_by"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    verbose_name = "purchase line"
    verbose_name_plural = "Purchase ledger"

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Inference tokens")
    def inference(self, line: TokenPurchase) -> str:
        return f"{line.inference_tokens:,}"

    @admin.display(description="Training tokens")
    def training(self, line: TokenPurchase) -> str:
        return f"{line.training_tokens:,}"
