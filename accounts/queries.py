"""Read helpers for people in an enterprise (counts for the Dashboard)."""

from __future__ import annotations

from django.db.models import Count, Q

from accounts.models import Enterprise, User


def people_summary(enterprise: Enterprise) -> dict[str, int]:
    """Users by role and by status, in one query."""
    counts = User.objects.in_enterprise(enterprise).aggregate(
        total=Count("id"),
        admins=Count("id", filter=Q(role=User.Role.ADMIN)),
        auditors=Count("id", filter=Q(role=User.Role.AUDITOR)),
        members=Count("id", filter=Q(role=User.Role.MEMBER)),
        paid=Count("id", filter=Q(status=User.Status.PAID)),
        banned=Count("id", filter=Q(status=User.Status.BANNED)),
    )
    return {key: int(value) for key, value in counts.items()}
