"""Valid filter or nothing: the rule every filtered page and export follows.

django-filter drops a field whose input fails validation and filters by the rest, so
`?role=owner` would quietly list (or export) everyone. Pages show the errors and no rows;
exports answer 400 with the reason.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpResponse
from django_filters import FilterSet


def filter_problem(filterset: FilterSet) -> str:
    """Why the filter input cannot be applied, or "" when it can (unbound means no filter)."""
    if not filterset.is_bound or filterset.is_valid():
        return ""
    return filterset.errors.as_text()


def filtered_rows(filterset: FilterSet) -> QuerySet:
    """The filtered rows; none at all when the input is invalid, never the unfiltered set."""
    if filter_problem(filterset):
        return filterset.queryset.none()
    return filterset.qs


def filtered_like(filterset: FilterSet, queryset: QuerySet) -> QuerySet:
    """The same valid filter on another queryset of the same model (none when invalid)."""
    if filter_problem(filterset):
        return queryset.none()
    return filterset.filter_queryset(queryset)


def refuse_bad_filter(filterset: FilterSet) -> HttpResponse | None:
    """For exports: a 400 naming the bad input, or None when the filter is valid."""
    problem = filter_problem(filterset)
    if not problem:
        return None
    return HttpResponse(f"Invalid filter:\n{problem}\n", status=400, content_type="text/plain")
