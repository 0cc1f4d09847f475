"""Staff admin (/staff/): provisioning enterprises and looking after accounts.

Every rule lives in tokens.services: the forms here call its check_* functions to show
problems next to the fields, and save through its write functions (which log the activity).
"""

from __future__ import annotations

import zoneinfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from accounts.models import Enterprise, User
from tokens import services
from tokens.admin import PurchaseInline
from tokens.models import TokenPurchase
from tokens.queries import pool_totals

TIME_ZONES = [(name, name) for name in sorted(zoneinfo.available_timezones())]


class EnterpriseAdminForm(forms.ModelForm):
    time_zone = forms.ChoiceField(
        choices=TIME_ZONES,
        initial="UTC",
        help_text="Monthly inference usage resets on the 1st of each month in this time zone.",
    )
    attach_emails = forms.CharField(
        label="Attach users by email",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 60}),
        help_text="Paste the emails of registered users: one per line, or separated by commas, "
        "semicolons or spaces. Everyone is attached or no one is.",
    )
    attach_role = forms.ChoiceField(
        label="Attach them as",
        choices=User.Role.choices,
        initial=User.Role.MEMBER,
    )
    admins = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(),
        required=False,
        widget=FilteredSelectMultiple("admins", is_stacked=False),
        help_text="Admins manage the enterprise's users and tokens in the console.",
    )
    auditors = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(),
        required=False,
        widget=FilteredSelectMultiple("auditors", is_stacked=False),
        help_text="Auditors see everything in the console and change nothing. "
        "Users chosen in neither list are members.",
    )

    class Meta:
        model = Enterprise
        fields = ["name", "slug", "time_zone"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            people = User.objects.in_enterprise(self.instance).order_by("email")
            for name, role in (("admins", User.Role.ADMIN), ("auditors", User.Role.AUDITOR)):
                self.fields[name].queryset = people
                self.initial[name] = [u.pk for u in people if u.role == role]
        else:
            del self.fields["admins"], self.fields["auditors"]

    def clean(self) -> dict:
        data = super().clean()
        self.emails = services.split_emails(data.get("attach_emails", ""))
        try:
            services.check_attachable(self.instance, self.emails)
        except services.Refused as exc:
            self.add_error("attach_emails", exc.message)
        if self.instance.pk and ("admins" in self.changed_data or "auditors" in self.changed_data):
            try:
                services.check_roles(
                    self.instance,
                    admins=[u.pk for u in data.get("admins", [])],
                    auditors=[u.pk for u in data.get("auditors", [])],
                )
            except services.Refused as exc:
                self.add_error("admins", exc.message)
        return data


class UsersInline(admin.TabularInline):
    """Who is attached, read-only: roles are chosen above, allocations in the console."""

    model = User
    fields = ["email", "full_name", "role", "status", "inference", "embedding"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "Users"

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Max Inference Tokens")
    def inference(self, user: User) -> str:
        return f"{user.max_inference_tokens:,}"

    @admin.display(description="Max Embedding Tokens")
    def embedding(self, user: User) -> str:
        return f"{user.max_embedding_tokens:,}"


def _sum_of(field: str) -> Coalesce:
    lines = (
        TokenPurchase.objects.filter(enterprise=OuterRef("pk"))
        .values("enterprise")
        .annotate(total=Sum(field))
        .values("total")
    )
    return Coalesce(Subquery(lines, output_field=IntegerField()), 0)


@admin.register(Enterprise)
class EnterpriseAdmin(admin.ModelAdmin):
    form = EnterpriseAdminForm
    list_display = ["name", "status", "user_count", "purchased_inference", "purchased_training"]
    list_display += ["time_zone", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["status", "activated_at", "pools", "readiness"]
    actions = ["activate", "suspend", "reactivate"]
    inlines = [UsersInline, PurchaseInline]

    def get_fieldsets(self, request: HttpRequest, obj: Enterprise | None = None):
        if obj is None:
            users = {
                "fields": ["attach_emails", "attach_role"],
                "description": "Admins and auditors can also be chosen after saving.",
            }
            return [(None, {"fields": ["name", "slug", "time_zone"]}), ("Users", users)]
        return [
            (None, {"fields": ["name", "slug", "time_zone", "status", "activated_at"]}),
            ("Tokens", {"fields": ["pools", "readiness"]}),
            ("Users", {"fields": ["attach_emails", "attach_role", "admins", "auditors"]}),
        ]

    def get_inlines(self, request: HttpRequest, obj: Enterprise | None = None):
        return self.inlines if obj else []

    def get_readonly_fields(self, request: HttpRequest, obj: Enterprise | None = None):
        return self.readonly_fields if obj else []

    def get_queryset(self, request: HttpRequest) -> QuerySet[Enterprise]:
        users = (
            User.objects.filter(enterprise=OuterRef("pk"))
            .values("enterprise")
            .annotate(n=Count("id"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_users=Coalesce(Subquery(users, output_field=IntegerField()), 0),
                n_inference=_sum_of("inference_tokens"),
                n_training=_sum_of("training_tokens"),
            )
        )

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Users", ordering="n_users")
    def user_count(self, obj: Enterprise) -> int:
        return obj.n_users

    @admin.display(description="Purchased inference", ordering="n_inference")
    def purchased_inference(self, obj: Enterprise) -> str:
        return f"{obj.n_inference:,}"

    @admin.display(description="Purchased training", ordering="n_training")
    def purchased_training(self, obj: Enterprise) -> str:
        return f"{obj.n_training:,}"

    @admin.display(description="Pools")
    def pools(self, obj: Enterprise) -> SafeString:
        totals = pool_totals(obj)
        add_url = reverse("admin:tokens_tokenpurchase_add") + f"?enterprise={obj.pk}"
        figures = [
            f"{n:,}"
            for pool in (totals.inference, totals.training)
            for n in (pool.purchased, pool.assigned, pool.unassigned)
        ]
        return format_html(
            "Inference: {} purchased · {} assigned · {} unassigned<br>"
            "Training: {} purchased · {} assigned · {} unassigned<br>"
            '<a href="{}">Record a purchase or correction</a>',
            *figures,
            add_url,
        )

    @admin.display(description="Activation check")
    def readiness(self, obj: Enterprise) -> SafeString:
        problems = services.activation_problems(obj)
        if not problems:
            return format_html("{}", "Meets every activation rule.")
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((p,) for p in problems))
        )

    def save_model(self, request: HttpRequest, obj: Enterprise, form, change: bool) -> None:
        data, actor = form.cleaned_data, request.user
        values = {k: data[k] for k in ("name", "slug", "time_zone")}
        try:
            if change:
                saved = services.update_enterprise(actor=actor, enterprise=obj, **values)
                if "admins" in form.changed_data or "auditors" in form.changed_data:
                    services.set_roles(
                        actor=actor,
                        enterprise=saved,
                        admins=[u.pk for u in data["admins"]],
                        auditors=[u.pk for u in data["auditors"]],
                    )
            else:
                saved = services.create_enterprise(actor=actor, **values)
                # The admin goes on to log and redirect with `obj`: make it the row written.
                obj.pk, obj.created_at, obj.status = saved.pk, saved.created_at, saved.status
                obj._state.adding = False
            if form.emails:
                attached = services.attach_users(
                    actor=actor, enterprise=saved, emails=form.emails, role=data["attach_role"]
                )
                messages.success(request, f"Attached {len(attached)} user(s).")
        except services.Refused as exc:  # a race since clean(): say so, keep what was saved
            messages.error(request, exc.message)

    def _run(self, request: HttpRequest, queryset, change, done: str) -> None:
        for enterprise in queryset:
            try:
                change(actor=request.user, enterprise=enterprise)
            except services.Refused as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, f"{enterprise.name} {done}.", messages.SUCCESS)

    @admin.action(description="Activate selected enterprises", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Enterprise]) -> None:
        self._run(request, queryset, services.activate_enterprise, "activated")

    @admin.action(description="Suspend selected enterprises", permissions=["change"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Enterprise]) -> None:
        self._run(request, queryset, services.suspend_enterprise, "suspended")

    @admin.action(description="Reactivate selected enterprises", permissions=["change"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Enterprise]) -> None:
        self._run(request, queryset, services.reactivate_enterprise, "reactivated")


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
