"""Filters of the Activity Logs page; its CSV export applies the very same FilterSet."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, cast

import django_filters
from django import forms
from django.db.models import QuerySet

from asksage_admin.core.models import ActivityLog
from asksage_admin.core.widgets import QuickDateInput, QuickSelect, QuickTextInput
from metrics.models import EnterpriseMonthlyUsage
from metrics.queries import MonthRange

# Dates outside this range cannot be converted to the database's UTC timestamps everywhere
# (year 1 minus a time-zone offset overflows); no log row can be older than 1970 anyway.
EARLIEST = dt.date(1970, 1, 1)
LATEST = dt.date(9998, 12, 31)


class ActivityFilterForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        data = cast(dict[str, Any], super().clean())  # Form.clean() returns cleaned_data
        for name in ("date_from", "date_to"):
            day = data.get(name)
            if day and not EARLIEST <= day <= LATEST:
                self.add_error(name, f"Enter a date between {EARLIEST} and {LATEST}.")
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The start date must be on or before the end date.")
        return data


class ActivityLogFilterSet(django_filters.FilterSet):
    """Actor email, action and a date range; dates are days in the enterprise's time zone."""

    actor = django_filters.CharFilter(
        field_name="actor_email",
        lookup_expr="icontains",
        label="Actor email",
        max_length=254,
        widget=QuickTextInput(attrs={"type": "search", "placeholder": "name@example.com"}),
    )
    action = django_filters.ChoiceFilter(
        choices=ActivityLog.Action.choices,
        empty_label="Any action",
        label="Action",
        widget=QuickSelect,
    )
    date_from = django_filters.DateFilter(
        method="filter_from", label="From", widget=QuickDateInput(attrs={"type": "date"})
    )
    date_to = django_filters.DateFilter(
        method="filter_to", label="To", widget=QuickDateInput(attrs={"type": "date"})
    )

    class Meta:
        model = ActivityLog
        fields: list[str] = []
        form = ActivityFilterForm

    def _day_start(self, day: dt.date) -> dt.datetime:
        # Midnight where the enterprise is: "From 1 March" means its 1 March, not UTC's.
        return dt.datetime.combine(day, dt.time.min, tzinfo=self.request.enterprise.tzinfo)

    def filter_from(self, queryset: QuerySet, name: str, value: dt.date) -> QuerySet:
        return queryset.filter(created_at__gte=self._day_start(value))

    def filter_to(self, queryset: QuerySet, name: str, value: dt.date) -> QuerySet:
        return queryset.filter(created_at__lt=self._day_start(value + dt.timedelta(days=1)))


# --- The statistics pages' month range (?from=YYYY-MM&to=YYYY-MM) ---------------------------

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
EARLIEST_MONTH = dt.date(1970, 1, 1)
LATEST_MONTH = dt.date(9998, 12, 1)


class MonthField(forms.Field):
    """A calendar month typed as YYYY-MM (what <input type="month"> sends): its first day."""

    widget = QuickTextInput(attrs={"type": "month", "placeholder": "YYYY-MM", "maxlength": 7})

    def to_python(self, value: Any) -> dt.date | None:
        text = str(value or "").strip()
        if not text:
            return None
        match = MONTH_RE.match(text)
        month = None
        if match and 1 <= int(match[2]) <= 12:
            month = dt.date(int(match[1]), int(match[2]), 1)
        if month is None or not EARLIEST_MONTH <= month <= LATEST_MONTH:
            raise forms.ValidationError(
                f"Enter a month as YYYY-MM (for example 2026-01), between"
                f" {EARLIEST_MONTH:%Y-%m} and {LATEST_MONTH:%Y-%m}."
            )
        return month


class MonthFilter(django_filters.Filter):
    field_class = MonthField


class MonthRangeForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        data = cast(dict[str, Any], super().clean())
        first, last = data.get("from"), data.get("to")
        if first and last and first > last:
            raise forms.ValidationError("The From month must be on or before the To month.")
        return data


class MonthRangeFilterSet(django_filters.FilterSet):
    """?from=YYYY-MM&to=YYYY-MM, both included, either optional: the Token Statistics, Token
    Usage and Monthly Data pages and the Token Usage CSV. Months are the enterprise's."""

    class Meta:
        model = EnterpriseMonthlyUsage
        fields: list[str] = []
        form = MonthRangeForm

    def month_range(self) -> MonthRange:
        """The valid range (call after filter_problem / refuse_bad_filter); unbound: all."""
        if not self.is_bound or not self.is_valid():
            return MonthRange()
        data = self.form.cleaned_data
        return MonthRange(data.get("from"), data.get("to"))


# "from" is a Python keyword, so the two filters cannot be declared in the class body.
MonthRangeFilterSet.base_filters["from"] = MonthFilter(
    field_name="month", lookup_expr="gte", label="From month"
)
MonthRangeFilterSet.base_filters["to"] = MonthFilter(
    field_name="month", lookup_expr="lte", label="To month"
)
