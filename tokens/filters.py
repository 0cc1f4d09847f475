"""Filters of the user table: a search box over email and name, role and status."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from accounts.models import STATUS_LABELS, User
from asksage_admin.core.widgets import QuickSelect, QuickTextInput


class UserFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        label="Search",
        widget=QuickTextInput(attrs={"type": "search", "placeholder": "Email or name"}),
    )
    role = django_filters.ChoiceFilter(
        choices=User.Role.choices, empty_label="Any role", widget=QuickSelect
    )
    status = django_filters.ChoiceFilter(
        choices=list(STATUS_LABELS.items()), empty_label="Any status", widget=QuickSelect
    )

    class Meta:
        model = User
        fields = ["q", "role", "status"]

    def search(self, queryset: QuerySet[User], name: str, value: str) -> QuerySet[User]:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(email__icontains=value) | Q(full_name__icontains=value))
