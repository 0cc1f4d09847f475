"""The user table of /org/users/."""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from typing import Any

import django_tables2 as tables
from django.db.models import F, QuerySet
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from accounts.models import STATUS_LABELS, User
from asksage_admin.core.formats import day_in_year, runs_out
from asksage_admin.core.tables import BaseTable, TokenColumn
from tokens.queries import PoolTotals

# Allocation column -> (User field, pool name in PoolTotals).
_COLUMNS = {
    "inference": ("max_inference_tokens", "inference"),
    "embedding": ("max_embedding_tokens", "training"),
}


class AllocationColumn(TokenColumn):
    """An allocation cell the inline editor can edit.

    The user id, the column and the value as loaded ride along as data attributes: the save
    sends the loaded value back so the server can refuse a stale edit. The footer shows the
    pool left; allocations.js updates it as edits are made.
    """

    def __init__(self, column: str, **kwargs: Any) -> None:
        self.column = column
        field, _ = _COLUMNS[column]
        attrs = {
            "td": {
                "class": "num alloc",
                "data-column": column,
                "data-user-id": lambda record: record.pk,
                "data-value": lambda record: getattr(record, field),
            },
            "tf": {"class": "num pool-cell", "data-column": column},
        }
        super().__init__(attrs=attrs, **kwargs)

    def render_footer(self, table: UserTable) -> SafeString:
        pool = getattr(table.pools, _COLUMNS[self.column][1])
        return format_html(
            '<span class="pool-left" data-unassigned="{}">{}</span>'
            '<span class="pool-of">of {} purchased</span>',
            pool.unassigned,
            f"{pool.unassigned:,}",
            f"{pool.purchased:,}",
        )


class BadgeColumn(tables.Column):
    """A choice shown as a coloured badge; its label in CSV."""

    def render(self, record: User, bound_column: tables.columns.BoundColumn) -> SafeString:
        # django-tables2 passes the choice's label as `value`; the badge class needs the key.
        key = getattr(record, bound_column.name)
        label = getattr(record, f"get_{bound_column.name}_display")()
        return format_html('<span class="badge badge-{}">{}</span>', key, label)

    def value(self, record: User, bound_column: tables.columns.BoundColumn) -> str:
        return getattr(record, f"get_{bound_column.name}_display")()


_ROLES = dict(User.Role.choices)
_STATUSES = STATUS_LABELS


class UserTable(BaseTable):
    id = tables.Column(verbose_name="ID", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    email = tables.Column(
        linkify=("console:user_detail", {"user_id": tables.A("pk")}),
        footer="Unassigned (after pending edits)",
    )
    # Ties are broken by email so that pages stay stable whichever column sorts them.
    role = BadgeColumn(order_by=("role", "email"))
    status = BadgeColumn(order_by=("status", "email"))
    max_inference_tokens = AllocationColumn(
        "inference",
        verbose_name="Max Inference Tokens",
        order_by=("max_inference_tokens", "email"),
    )
    max_embedding_tokens = AllocationColumn(
        "embedding",
        verbose_name="Max Embedding Tokens",
        order_by=("max_embedding_tokens", "email"),
    )
    total_usage = TokenColumn(verbose_name="Total Usage", order_by=("total_usage", "email"))
    month_inference = TokenColumn(
        verbose_name="Monthly Inference Tokens", order_by=("month_inference", "email")
    )
    prev_month_inference = TokenColumn(
        verbose_name="Prev Month Inference", order_by=("prev_month_inference", "email")
    )
    # The burn-rate forecast (metrics.forecast, annotated by users_with_usage). Not exported:
    # a forecast is today's guess, not a figure of record.
    runs_out_days = tables.Column(
        verbose_name="Runs out",
        attrs={"td": {"class": "num"}, "th": {"class": "num"}},
        exclude_from_export=True,
    )

    class Meta(BaseTable.Meta):
        model = User
        fields = (
            "id",
            "email",
            "role",
            "status",
            "max_inference_tokens",
            "max_embedding_tokens",
            "total_usage",
            "month_inference",
            "prev_month_inference",
            "runs_out_days",
        )
        order_by = "email"
        row_attrs = {"data-user-id": lambda record: record.pk}
        empty_text = "No users match."
        # Rows come from lean_html_rows(): django-tables2's per-cell rendering cost ~0.2 ms a row
        # (attrs, accessors, render_* per cell); headers, sorting and pagination stay its own.
        template_name = "includes/user_table.html"

    def __init__(self, *args: Any, pools: PoolTotals, **kwargs: Any) -> None:
        self.pools = pools
        super().__init__(*args, **kwargs)

    def footer_cell(self, column: tables.columns.BoundColumn) -> SafeString:
        """Under the emails, what the allocation footers show; the note on pending edits
        only for people who can make them."""
        if column.name != "email":
            return super().footer_cell(column)
        request = getattr(self, "request", None)
        can_edit = request is not None and request.user.can_edit_console
        note = ' <span class="pool-note">after pending edits</span>' if can_edit else ""
        return format_html('<td class="pool-label">Unassigned{}</td>', mark_safe(note))  # noqa: S308

    def order_runs_out_days(self, queryset: QuerySet, is_descending: bool) -> tuple[QuerySet, bool]:
        """Soonest first (or last); users without a forecast always at the end."""
        days = F("runs_out_days")
        key = days.desc(nulls_last=True) if is_descending else days.asc(nulls_last=True)
        return queryset.order_by(key, "email"), True

    def lean_html_rows(self) -> Iterator[SafeString]:
        """The page's users as the same cells the columns above render, one string a row.

        The td classes and data attributes are the ones allocations.js reads; "email" keeps
        addresses from breaking at their hyphens. Numbers are formatted here, not localized
        by the template engine value by value; every text is escaped (html.escape, as the
        Activity Logs rows: format_html's per-argument checks cost ~1 ms a page here).
        """
        url = reverse("console:user_detail", kwargs={"user_id": 1234567890})
        for i, row in enumerate(self.paginated_rows):
            u = row.record
            pk = str(u.pk)
            temp = _temporary_text(u)
            temp_attr = f' data-temp="{escape(temp)}"' if temp else ""
            role, status = escape(u.role), escape(u.status)
            days = runs_out(getattr(u, "runs_out_days", None), getattr(u, "runs_out_from", None))
            yield mark_safe(  # noqa: S308 (every value escaped or a formatted integer)
                f'<tr data-user-id="{pk}" class="{"odd" if i % 2 else "even"}">\n'
                f'<td class="num">{pk}</td>\n'
                f'<td class="email"><a href="{escape(url.replace("1234567890", pk))}">'
                f"{escape(u.email)}</a></td>\n"
                f'<td><span class="badge badge-{role}">{escape(_ROLES.get(u.role, u.role))}'
                "</span></td>\n"
                f'<td><span class="badge badge-{status}">'
                f"{escape(_STATUSES.get(u.status, u.status))}</span></td>\n"
                f'<td class="num alloc" data-column="inference" data-user-id="{pk}"'
                f' data-value="{int(u.max_inference_tokens)}"{temp_attr}>'
                f"{int(u.max_inference_tokens):,}</td>\n"
                f'<td class="num alloc" data-column="embedding" data-user-id="{pk}"'
                f' data-value="{int(u.max_embedding_tokens)}">'
                f"{int(u.max_embedding_tokens):,}</td>\n"
                f'<td class="num">{int(u.total_usage or 0):,}</td>\n'
                f'<td class="num">{int(u.month_inference or 0):,}</td>\n'
                f'<td class="num">{int(u.prev_month_inference or 0):,}</td>\n'
                f'<td class="num runs-out">{escape(days)}</td>\n'
                "</tr>\n"
            )


def _temporary_text(user: User) -> str:
    """The Users table's note on a temporary allocation (annotated by users_with_usage)."""
    extra, until = getattr(user, "temp_extra", 0), getattr(user, "temp_until", None)
    if not extra or until is None:
        return ""
    return f"(+{int(extra):,} until {day_in_year(until)})"
