"""Tables of the statistics pages and the activity log; the CSV exports reuse their columns."""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any

import django_tables2 as tables
from django.utils import timezone
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

from asksage_admin.core import formats
from asksage_admin.core.models import ActivityLog
from asksage_admin.core.tables import BaseTable, TokenColumn
from metrics.queries import SPIKE_RULE, SPIKE_WINDOW, MonthRow, YearSummary


class FooterTokenColumn(TokenColumn):
    """A token column with a right-aligned footer cell."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("attrs", {}).setdefault("tf", {"class": "num"})
        super().__init__(*args, **kwargs)


class SumColumn(FooterTokenColumn):
    """A token column whose footer is the sum of the column over the table's rows."""

    def render_footer(self, bound_column: tables.columns.BoundColumn, table: tables.Table) -> str:
        return self.render(sum(int(bound_column.accessor.resolve(r) or 0) for r in table.data))


class YearSumColumn(FooterTokenColumn):
    """Footer: the grand total over the year subtotal rows (month rows would count twice)."""

    def render_footer(self, bound_column: tables.columns.BoundColumn, table: tables.Table) -> str:
        rows = (r for r in table.data if isinstance(r, YearSummary))
        return self.render(sum(int(bound_column.accessor.resolve(r)) for r in rows))


class PercentColumn(tables.Column):
    """A display share such as 12.5%; the bare number in CSV."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("attrs", {"td": {"class": "num"}, "th": {"class": "num"}})
        super().__init__(*args, **kwargs)

    def render(self, value: Decimal) -> str:
        return f"{value}%"

    def value(self, value: Decimal) -> Decimal:
        return value


class MonthlyDataTable(BaseTable):
    """Monthly Data: one row per year-month; spikes get the `spike` row class and a badge."""

    period = tables.Column("Period", empty_values=(), footer="All months")
    inference = SumColumn("Inference Tokens")
    embedding = SumColumn("Embedding Tokens")
    total = SumColumn("Total Tokens")
    trend = tables.Column(
        f"vs {SPIKE_WINDOW}-month average",
        accessor="change_percent",
        attrs={"td": {"class": "num"}, "th": {"class": "num"}},
        default="—",
        exclude_from_export=True,
    )

    class Meta(BaseTable.Meta):
        orderable = False
        row_attrs = {
            "class": lambda record: "spike" if record.spike else "",
            "data-period": lambda record: record.period,
        }
        # Rows from lean_html_rows(): the same markup as the columns' cells, built once in
        # Python (django-tables2's per-cell rendering cost more than the page's SQL).
        template_name = "includes/lean_table.html"

    def lean_html_rows(self) -> Iterator[SafeString]:
        for i, row in enumerate(self.paginated_rows):
            r = row.record
            change = r.change_percent
            yield format_html(
                '<tr class="{}{}" data-period="{}"><td>{}</td><td class="num">{}</td>'
                '<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>\n',
                "spike " if r.spike else "",
                "odd" if i % 2 else "even",
                r.period,
                self.render_period(r),
                f"{r.inference:,}",
                f"{r.embedding:,}",
                f"{r.total:,}",
                "—" if change is None else self.render_trend(change),
            )

    def render_period(self, record: MonthRow) -> str:
        label = f"{record.month:%B %Y}"
        if record.spike:
            label = format_html(
                '{} <span class="badge badge-spike" title="Spike: {}">Spike</span>',
                label,
                SPIKE_RULE,
            )
        if record.adjusted_after_close:
            label = format_html(
                '{} <span class="badge badge-adjusted" title="Usage was reported after this'
                " month's statement was closed; see the next statement\">"
                "Adjusted after close</span>",
                label,
            )
        return label

    def render_trend(self, value: Decimal) -> str:
        return f"{'+' if value > 0 else ''}{value}%"

    def value_period(self, record: MonthRow) -> str:
        return record.period


class TokenStatisticsTable(BaseTable):
    """Token Statistics: each year's subtotal row followed by its months, newest first."""

    period = tables.Column("Year / month", empty_values=(), footer="All time")
    inference = YearSumColumn("Inference Tokens")
    embedding = YearSumColumn("Embedding Tokens")
    total = YearSumColumn("Total Tokens")

    class Meta(BaseTable.Meta):
        orderable = False
        row_attrs = {
            "class": lambda record: "subtotal" if isinstance(record, YearSummary) else "month"
        }
        template_name = "includes/lean_table.html"  # rows from lean_html_rows()

    def lean_html_rows(self) -> Iterator[SafeString]:
        for i, row in enumerate(self.paginated_rows):
            r = row.record
            yield format_html(
                '<tr class="{} {}"><td>{}</td><td class="num">{}</td><td class="num">{}</td>'
                '<td class="num">{}</td></tr>\n',
                "subtotal" if isinstance(r, YearSummary) else "month",
                "odd" if i % 2 else "even",
                self.render_period(r),
                f"{r.inference:,}",
                f"{r.embedding:,}",
                f"{r.total:,}",
            )

    def render_period(self, record: MonthRow | YearSummary) -> str:
        if isinstance(record, YearSummary):
            return f"{record.year} · subtotal"
        return format_html('<span class="indent">{}</span>', f"{record.month:%B}")


class _ShareTable(BaseTable):
    """A label, then inference, embedding and total tokens and a share, per row.

    Rows come from lean_html_rows(), the cells the columns render (django-tables2's
    per-cell plumbing was two thirds of the Token Usage page's time).
    """

    class Meta(BaseTable.Meta):
        orderable = False
        empty_text = "No usage reported yet."
        template_name = "includes/lean_table.html"

    label_field = ""  # the first column's field

    def lean_html_rows(self) -> Iterator[SafeString]:
        for i, row in enumerate(self.paginated_rows):
            r = row.record
            label, share = getattr(r, self.label_field), r.share
            yield format_html(
                '<tr class="{}"><td>{}</td><td class="num">{}</td><td class="num">{}</td>'
                '<td class="num">{}</td><td class="num">{}</td></tr>\n',
                "odd" if i % 2 else "even",
                "—" if label in (None, "") else label,
                f"{int(r.inference or 0):,}",
                f"{int(r.embedding or 0):,}",
                f"{int(r.total or 0):,}",
                "—" if share in (None, "") else f"{share}%",
            )


class ModelUsageTable(_ShareTable):
    model = tables.Column("Model")
    inference = TokenColumn("Inference Tokens")
    embedding = TokenColumn("Embedding Tokens")
    total = TokenColumn("Total Tokens")
    share = PercentColumn("Share")
    label_field = "model"

    class Meta(_ShareTable.Meta):
        pass


class TopUsersTable(_ShareTable):
    email = tables.Column("User")
    inference = TokenColumn("Inference Tokens")
    embedding = TokenColumn("Embedding Tokens")
    total = TokenColumn("Total Usage")
    share = PercentColumn("Share")
    label_field = "email"

    class Meta(_ShareTable.Meta):
        pass


def _text(value: Any) -> str:
    """A logged value as a person reads it: 200,000 rather than 200000."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return json.dumps(value, sort_keys=True)


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _change(old: str, new: str) -> str:
    return f'<span class="old">{escape(old)}</span> → <span class="new">{escape(new)}</span>'


class ActivityLogTable(BaseTable):
    """Activity Logs: read-only, newest first; times in the enterprise's time zone."""

    created_at = tables.Column("When", attrs={"td": {"class": "nowrap"}})
    actor_email = tables.Column("Actor", default="—")
    action = tables.Column("Action")
    target = tables.Column("Target", default="", attrs={"td": {"data-col": "target"}})
    change = tables.Column("Change", empty_values=(), exclude_from_export=True)
    ip_address = tables.Column("From (IP)", default="")
    request_id = tables.Column("Request ID", visible=False)
    old_value = tables.Column("Old value", visible=False)
    new_value = tables.Column("New value", visible=False)
    # The hash chain, for auditors (README: "Verifying an activity export offline").
    enterprise_id = tables.Column("Enterprise ID", visible=False)
    seq = tables.Column("Seq", visible=False)
    prev_hash = tables.Column("Previous hash", visible=False)
    hash = tables.Column("Hash", visible=False)

    class Meta(BaseTable.Meta):
        orderable = False
        empty_text = "No activity matches these filters."
        # Rows come from lean_html_rows(): django-tables2's per-cell rendering (attrs, accessors,
        # a signature inspection per render_* call) cost more than the page's SQL.
        template_name = "includes/lean_table.html"

    def __init__(self, *args: Any, time_zone: zoneinfo.ZoneInfo, **kwargs: Any) -> None:
        self.time_zone = time_zone
        super().__init__(*args, **kwargs)

    def lean_html_rows(self) -> Iterator[SafeString]:
        """The page's entries as the same cells the columns render, without the plumbing.
        Written with html.escape and f-strings: format_html's per-argument checks cost
        ~1.5 ms of 50 rows."""
        labels = dict(ActivityLog.Action.choices)
        for i, row in enumerate(self.paginated_rows):
            log = row.record
            action = escape(log.action)
            yield mark_safe(  # noqa: S308 (every value escaped; render_change escapes its own)
                f'<tr class="{"odd" if i % 2 else "even"}">'
                f'<td class="nowrap">{escape(formats.when(log.created_at, self.time_zone))}</td>'
                f"<td>{escape(log.actor_email or '—')}</td>"
                f'<td><span class="badge badge-action" data-action="{action}">'
                f"{escape(labels.get(log.action, log.action))}</span></td>"
                f'<td data-col="target">{escape(log.target or "")}</td>'
                f"<td>{conditional_escape(self.render_change(log))}</td>"
                f"<td>{escape(log.ip_address or '')}</td></tr>\n"
            )

    def render_created_at(self, value: datetime) -> str:
        return formats.when(value, self.time_zone)

    def value_created_at(self, value: datetime) -> str:
        # Microseconds kept: the hashed record holds the exact time (in UTC).
        return timezone.localtime(value, self.time_zone).isoformat(timespec="microseconds")

    def render_action(self, record: ActivityLog) -> str:
        return format_html(
            '<span class="badge badge-action" data-action="{}">{}</span>',
            record.action,
            record.get_action_display(),
        )

    def value_action(self, value: str) -> str:
        # CSV keeps the stable action code (sign_in, allocation_changed ...), not the label.
        return value

    def render_change(self, record: ActivityLog) -> str:
        """Field by field, "Max inference tokens: 200,000 → 350,000"; "—" when nothing.

        Escaped here with html.escape and joined as text (what format_html would write):
        an export row's six fields cost 2 ms a page through format_html.
        """
        old, new = record.old_value, record.new_value
        if not isinstance(old, dict) and not isinstance(new, dict):
            if old is not None and new is not None:
                return mark_safe(_change(_text(old), _text(new)))  # noqa: S308 (escaped)
            return _text(new if new is not None else old) or "—"
        old, new = old if isinstance(old, dict) else {}, new if isinstance(new, dict) else {}
        parts = []
        for key in sorted(old.keys() | new.keys()):
            label = escape(_label(key))
            if key in old and key in new:
                parts.append(f"{label}: {_change(_text(old[key]), _text(new[key]))}")
            else:
                parts.append(f"{label}: {escape(_text(new.get(key, old.get(key))))}")
        return mark_safe("; ".join(parts)) if parts else "—"  # noqa: S308 (escaped above)

    def value_old_value(self, value: Any) -> str:
        return "" if value is None else json.dumps(value, sort_keys=True)

    def value_new_value(self, value: Any) -> str:
        return "" if value is None else json.dumps(value, sort_keys=True)


class UserExportTable(BaseTable):
    """Columns of Export Users (the people, no figures)."""

    id = tables.Column("ID")
    email = tables.Column("Email")
    full_name = tables.Column("Name", default="")
    role = tables.Column("Role")
    status = tables.Column("Status")
    date_joined = tables.Column("Joined")

    def value_date_joined(self, value: datetime) -> str:
        return f"{value:%Y-%m-%d}"
