"""Staff admin (/staff/) for provisioning: enterprises, their users and the purchase ledger.

Every save is one call to a tokens service (asksage_admin.core.admin_forms): the rules run
once, under the enterprise lock, and a refusal shows as a form error.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from accounts.models import Enterprise, User
from asksage_admin.core import formats
from asksage_admin.core.admin_forms import ServiceAdminMixin, ServiceForm
from asksage_admin.core.errors import Refused
from asksage_admin.core.fields import TokenCountField
from tokens import membership, pool, provisioning
from tokens.models import TokenPurchase
from tokens.queries import pool_totals

if TYPE_CHECKING:
    from django.contrib.admin.options import InlineModelAdmin, _FieldOpts, _FieldsetSpec
    from django_stubs_ext import WithAnnotations

    class _EnterpriseCounts(TypedDict):
        """What EnterpriseAdmin.get_queryset annotates on each row."""

        n_users: int
        n_inference: int
        n_training: int


TIME_ZONES = [(name, name) for name in sorted(zoneinfo.available_timezones())]


class TokenPurchaseForm(ServiceForm):
    inference_tokens = TokenCountField(
        allow_negative=True,
        initial=0,
        help_text="Monthly inference capacity bought (negative for a correction).",
    )
    training_tokens = TokenCountField(
        allow_negative=True,
        initial=0,
        help_text="Lifetime training/embedding tokens bought (negative for a correction).",
    )

    class Meta:
        model = TokenPurchase
        fields = ["enterprise", "inference_tokens", "training_tokens", "purchased_on", "reference"]
        fields += ["note"]

    def apply(self) -> TokenPurchase:
        data = self.cleaned_data
        return pool.record_purchase(
            actor=self.actor,
            enterprise=data["enterprise"],
            inference_tokens=data.get("inference_tokens") or 0,
            training_tokens=data.get("training_tokens") or 0,
            reference=data["reference"],
            purchased_on=data["purchased_on"],
            note=data.get("note", ""),
        )


class EnterprisePurchaseForm(TokenPurchaseForm):
    """The same ledger line, recorded from the enterprise's own page: its enterprise is fixed."""

    class Meta(TokenPurchaseForm.Meta):
        fields = ["inference_tokens", "training_tokens", "purchased_on", "reference", "note"]
        widgets = {"purchased_on": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}
        labels = {"purchased_on": "Purchased on", "reference": "Invoice or PO reference"}

    def __init__(self, *args: Any, enterprise: Enterprise, actor: User, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "purchase")
        super().__init__(*args, **kwargs)
        self.instance.enterprise = enterprise
        self.actor = actor

    def apply(self) -> TokenPurchase:
        self.cleaned_data["enterprise"] = self.instance.enterprise
        return super().apply()


@admin.register(TokenPurchase)
class TokenPurchaseAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """The ledger is append-only: a correction is a new (negative) line, never an edit."""

    form = TokenPurchaseForm
    list_display = [
        "enterprise",
        "purchased_on",
        "reference",
        "inference",
        "training",
        "recorded_by",
        "recorded_at",
    ]
    list_filter = ["enterprise"]
    search_fields = ["reference", "enterprise__name"]
    list_select_related = ["enterprise", "recorded_by"]
    date_hierarchy = "purchased_on"

    @admin.display(description="Inference tokens", ordering="inference_tokens")
    def inference(self, line: TokenPurchase) -> str:
        return formats.tokens(line.inference_tokens)

    @admin.display(description="Training tokens", ordering="training_tokens")
    def training(self, line: TokenPurchase) -> str:
        return formats.tokens(line.training_tokens)

    def has_change_permission(self, request: HttpRequest, obj: TokenPurchase | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: TokenPurchase | None = None) -> bool:
        return False


class PurchaseInline(admin.TabularInline):
    """The ledger on the enterprise page, read-only; new lines go through Add purchase."""

    model = TokenPurchase
    fields = ["purchased_on", "reference", "inference", "training", "note", "recorded_by"]
    readonly_fields = cast(list[str], fields)  # a flat list of names
    extra = 0
    can_delete = False
    show_change_link = False
    verbose_name = "purchase line"
    verbose_name_plural = "Purchase ledger"

    def has_add_permission(self, request: HttpRequest, obj: Enterprise | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Enterprise | None = None) -> bool:
        return False

    @admin.display(description="Inference tokens")
    def inference(self, line: TokenPurchase) -> str:
        return f"{line.inference_tokens:,}"

    @admin.display(description="Training tokens")
    def training(self, line: TokenPurchase) -> str:
        return f"{line.training_tokens:,}"


class EnterpriseAdminForm(ServiceForm):
    time_zone = forms.ChoiceField(
        choices=TIME_ZONES,
        initial="UTC",
        help_text="Monthly inference usage resets on the 1st of each month in this time zone. "
        "A change applies to usage reported from then on; recorded months keep their grouping.",
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
    admins = forms.CharField(
        label="Admins",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="Emails of the admins, who manage the enterprise's users and tokens in the "
        "console: one per line, or separated by commas. They must be attached users.",
    )
    auditors = forms.CharField(
        label="Auditors",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="Emails of the auditors, who see everything in the console and change "
        "nothing. Attached users named in neither list are members.",
    )

    class Meta:
        model = Enterprise
        fields = ["name", "slug", "time_zone"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # Only the admins and auditors are listed, whatever the number of users.
            named = list(
                User.objects.in_enterprise(self.instance)
                .filter(role__in=[User.Role.ADMIN, User.Role.AUDITOR])
                .order_by("email")
                .values_list("email", "role")
            )
            for name, role in (("admins", User.Role.ADMIN), ("auditors", User.Role.AUDITOR)):
                self.initial[name] = "\n".join(email for email, r in named if r == role)
        else:
            del self.fields["admins"], self.fields["auditors"]

    def _roles(self) -> dict[str, list[str]] | None:
        """The admins and auditors asked for, or None when they are the ones already set."""
        asked = {n: membership.split_emails(self.cleaned_data[n]) for n in ("admins", "auditors")}
        now = {n: membership.split_emails(self.initial[n]) for n in ("admins", "auditors")}
        return None if all(set(asked[n]) == set(now[n]) for n in asked) else asked

    def apply(self) -> Enterprise:
        """Create or update, attach users, set roles: one service call each, all or none.

        Users are attached before roles are set, so one save can attach someone and make
        them an admin.
        """
        data, actor = self.cleaned_data, self.actor
        values = {k: data[k] for k in ("name", "slug", "time_zone")}
        if self.instance.pk:
            saved = provisioning.update_enterprise(actor=actor, enterprise=self.instance, **values)
        else:
            saved = provisioning.create_enterprise(actor=actor, **values)
        emails = membership.split_emails(data.get("attach_emails", ""))
        self.attached = []
        if emails:
            try:
                self.attached = membership.attach_users(
                    actor=actor, enterprise=saved, emails=emails, role=data["attach_role"]
                )
            except Refused as exc:
                raise Refused(
                    exc.message, code=exc.code, rows={"attach_emails": exc.message}
                ) from None
        roles = self._roles() if self.instance.pk else None
        if roles is not None:
            # Someone attached as admin or auditor just now keeps that role unless named.
            named = {*roles["admins"], *roles["auditors"]}
            box = {User.Role.ADMIN: "admins", User.Role.AUDITOR: "auditors"}
            if data["attach_role"] in box:
                box_name = box[data["attach_role"]]
                roles[box_name] += [u.email for u in self.attached if u.email not in named]
            try:
                membership.set_roles_by_email(actor=actor, enterprise=saved, **roles)
            except Refused as exc:
                rows = exc.rows or {"admins": exc.message}
                raise Refused(exc.message, code=exc.code, rows=rows) from None
        return saved


def _sum_of(field: str) -> Coalesce:
    lines = (
        TokenPurchase.objects.filter(enterprise=OuterRef("pk"))
        .values("enterprise")
        .annotate(total=Sum(field))
        .values("total")
    )
    return Coalesce(Subquery(lines, output_field=IntegerField()), 0)


@admin.register(Enterprise)
class EnterpriseAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = EnterpriseAdminForm
    list_display = ["name", "status", "user_count", "purchased_inference", "purchased_training"]
    list_display += ["time_zone", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["status", "activated_at", "pools", "readiness", "people"]
    actions = ["activate", "suspend", "reactivate"]
    inlines = [PurchaseInline]

    def get_fieldsets(self, request: HttpRequest, obj: Enterprise | None = None) -> _FieldsetSpec:
        if obj is None:
            users: _FieldOpts = {
                "fields": ["attach_emails", "attach_role"],
                "description": "Admins and auditors can also be chosen after saving.",
            }
            return [(None, {"fields": ["name", "slug", "time_zone"]}), ("Users", users)]
        return [
            (None, {"fields": ["name", "slug", "time_zone", "status", "activated_at"]}),
            ("Tokens", {"fields": ["pools", "readiness"]}),
            ("Users", {"fields": ["people", "attach_emails", "attach_role", "admins", "auditors"]}),
        ]

    def get_inlines(
        self, request: HttpRequest, obj: Enterprise | None = None
    ) -> list[type[InlineModelAdmin]] | tuple[type[InlineModelAdmin], ...]:
        return self.inlines if obj else []

    def get_readonly_fields(
        self, request: HttpRequest, obj: Enterprise | None = None
    ) -> list[str] | tuple[str, ...]:
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

    def has_delete_permission(self, request: HttpRequest, obj: Enterprise | None = None) -> bool:
        return False

    @admin.display(description="Users", ordering="n_users")
    def user_count(self, obj: WithAnnotations[Enterprise, _EnterpriseCounts]) -> int:
        return obj.n_users

    @admin.display(description="Purchased inference", ordering="n_inference")
    def purchased_inference(self, obj: WithAnnotations[Enterprise, _EnterpriseCounts]) -> str:
        return f"{obj.n_inference:,}"

    @admin.display(description="Purchased training", ordering="n_training")
    def purchased_training(self, obj: WithAnnotations[Enterprise, _EnterpriseCounts]) -> str:
        return f"{obj.n_training:,}"

    @admin.display(description="Pools")
    def pools(self, obj: Enterprise) -> SafeString:
        totals = pool_totals(obj)
        figures = [
            f"{n:,}"
            for pool in (totals.inference, totals.training)
            for n in (pool.purchased, pool.assigned, pool.unassigned)
        ]
        return format_html(
            "Inference: {} purchased · {} assigned · {} unassigned<br>"
            "Training: {} purchased · {} assigned · {} unassigned<br>"
            '<a href="#record-purchase">Record a purchase or correction</a>',
            *figures,
        )

    @admin.display(description="Attached")
    def people(self, obj: WithAnnotations[Enterprise, _EnterpriseCounts]) -> SafeString:
        # A count and a link, not a list: the user changelist paginates and searches.
        url = reverse("admin:accounts_user_changelist") + f"?enterprise__id__exact={obj.pk}"
        return format_html(
            '{} attached · <a href="{}">See, search and filter them</a>',
            f"{obj.n_users:,}",
            url,
        )

    @admin.display(description="Activation check")
    def readiness(self, obj: Enterprise) -> SafeString:
        problems = provisioning.activation_problems(obj)
        if not problems:
            return format_html("{}", "Meets every activation rule.")
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((p,) for p in problems))
        )

    def save_form(
        self, request: HttpRequest, form: EnterpriseAdminForm, change: bool
    ) -> Enterprise:
        saved = super().save_form(request, form, change)
        if form.attached:
            names = ", ".join(u.email for u in form.attached)
            count = formats.count_of(len(form.attached), "user")
            messages.success(request, f"Attached {count} to {saved.name}: {names}.")
        if change and "time_zone" in form.changed_data:
            messages.warning(
                request,
                f"Time zone is now {saved.time_zone}. Usage reported from now on is grouped "
                "into months of this zone; months already recorded keep their grouping.",
            )
        return saved

    # One message per status change, the same from the buttons and the list's actions.
    STATUS_CHANGES: dict[str, tuple[Callable[..., Enterprise], str]] = {
        "activate": (
            provisioning.activate_enterprise,
            "{name} is now active: its admins can use the console and every Paid user has "
            "at least the minimum inference allocation.",
        ),
        "suspend": (
            provisioning.suspend_enterprise,
            "{name} is now suspended: its console is closed and its users' requests are "
            "refused. Usage and allocations are kept.",
        ),
        "reactivate": (
            provisioning.reactivate_enterprise,
            "{name} is active again: its console is open and its users' requests are allowed.",
        ),
    }

    def _change_status(self, request: HttpRequest, enterprise: Enterprise, change: str) -> bool:
        service, done = self.STATUS_CHANGES[change]
        try:
            service(actor=request.user, enterprise=enterprise)
        except Refused as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return False
        self.message_user(request, done.format(name=enterprise.name), messages.SUCCESS)
        return True

    def _run(self, request: HttpRequest, queryset: QuerySet[Enterprise], change: str) -> None:
        for enterprise in queryset:
            self._change_status(request, enterprise, change)

    @admin.action(description="Activate selected enterprises", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Enterprise]) -> None:
        self._run(request, queryset, "activate")

    @admin.action(description="Suspend selected enterprises", permissions=["change"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Enterprise]) -> None:
        self._run(request, queryset, "suspend")

    @admin.action(description="Reactivate selected enterprises", permissions=["change"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Enterprise]) -> None:
        self._run(request, queryset, "reactivate")

    # The enterprise page's own buttons: a status change and a purchase line, each one
    # service call, answered on the same page.

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        info = self.opts.app_label, self.opts.model_name
        own = [
            path(
                "<path:object_id>/status/<slug:change>/",
                wrap(self.status_view),
                name="{}_{}_status".format(*info),
            ),
            path(
                "<path:object_id>/purchase/",
                wrap(self.purchase_view),
                name="{}_{}_purchase".format(*info),
            ),
        ]
        return own + super().get_urls()

    def _enterprise_or_404(self, request: HttpRequest, object_id: str) -> Enterprise:
        enterprise = self.get_object(request, unquote(object_id))
        if enterprise is None:
            raise Http404("No such enterprise.")
        return enterprise

    def _back_to(self, enterprise: Enterprise) -> HttpResponseRedirect:
        page = reverse("admin:accounts_enterprise_change", args=[enterprise.pk])
        return HttpResponseRedirect(page)

    def status_view(self, request: HttpRequest, object_id: str, change: str) -> HttpResponse:
        """Activate, Suspend or Reactivate from the enterprise page; back to it with a message.

        Suspending shuts a whole customer out at once, so its button opens a confirmation
        page first (GET); the change itself is always a POST.
        """
        confirm_first = change == "suspend" and request.method == "GET"
        if request.method != "POST" and not confirm_first:
            return HttpResponseNotAllowed(["POST"])
        enterprise = self._enterprise_or_404(request, object_id)
        if change not in self.STATUS_CHANGES:
            raise Http404("No such status change.")
        if not self.has_change_permission(request, enterprise):
            raise PermissionDenied
        if confirm_first:
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "original": enterprise,
                "title": f"Suspend {enterprise.name}?",
            }
            return TemplateResponse(
                request, "admin/accounts/enterprise/confirm_suspend.html", context
            )
        self._change_status(request, enterprise, change)
        return self._back_to(enterprise)

    def _may_record_purchases(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tokens.add_tokenpurchase")

    def purchase_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Record a purchase line from the enterprise page.

        Saved: back to the page with a sentence saying what was recorded. Refused or
        invalid: the page again, the form filled in as sent, with its errors.
        """
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        enterprise = self._enterprise_or_404(request, object_id)
        if not self._may_record_purchases(request):
            raise PermissionDenied
        actor = cast(User, request.user)
        form = EnterprisePurchaseForm(request.POST, enterprise=enterprise, actor=actor)
        if not form.is_valid():
            self.message_user(
                request,
                f"The purchase for {enterprise.name} was not recorded: see the form below.",
                messages.ERROR,
            )
            # Show the enterprise page itself (as a GET: nothing on it is saved).
            request.method = "GET"
            return self.change_view(request, object_id, extra_context={"purchase_form": form})
        line = cast(TokenPurchase, form.saved)
        self.message_user(request, purchase_sentence(line, enterprise), messages.SUCCESS)
        return self._back_to(enterprise)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = dict(extra_context or {})
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            may_change = self.has_change_permission(request, obj)
            context["status_buttons"] = [
                (change, label)
                for change, label, status in STATUS_BUTTONS
                if may_change and obj.status == status
            ]
            if self._may_record_purchases(request) and "purchase_form" not in context:
                actor = cast(User, request.user)
                context["purchase_form"] = EnterprisePurchaseForm(enterprise=obj, actor=actor)
        return super().change_view(request, object_id, form_url, context)


STATUS_BUTTONS = [
    ("activate", "Activate", Enterprise.Status.PENDING),
    ("suspend", "Suspend", Enterprise.Status.ACTIVE),
    ("reactivate", "Reactivate", Enterprise.Status.SUSPENDED),
]


def purchase_sentence(line: TokenPurchase, enterprise: Enterprise) -> str:
    """'Recorded purchase INV-7 for Acme: 3,000,000 inference tokens and no training tokens.'"""
    parts = [
        f"{formats.tokens(n)} {name} tokens" if n else f"no {name} tokens"
        for n, name in ((line.inference_tokens, "inference"), (line.training_tokens, "training"))
    ]
    kind = "correction" if min(line.inference_tokens, line.training_tokens) < 0 else "purchase"
    return f"Recorded {kind} {line.reference} for {enterprise.name}: {parts[0]} and {parts[1]}."
