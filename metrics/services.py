"""Write rules for usage and the activity log. Every audited write calls log_activity."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import Enterprise, User
from asksage_admin.middleware import current_request_meta
from metrics.models import ActivityLog


def log_activity(
    *,
    actor: User | None,
    action: str,
    enterprise: Enterprise | None = None,
    target: str = "",
    old: Any = None,
    new: Any = None,
    actor_email: str = "",
) -> ActivityLog:
    """Append one activity-log row, inside the caller's transaction when there is one.

    IP address and request id come from the request being served (RequestContextMiddleware);
    management commands and tests leave them empty.
    """
    meta = current_request_meta()
    if enterprise is None and actor is not None and actor.enterprise_id is not None:
        enterprise = actor.enterprise
    with transaction.atomic():
        return ActivityLog.objects.create(
            actor=actor if actor is not None and actor.pk else None,
            actor_email=(actor.email if actor is not None else actor_email)[:254],
            enterprise=enterprise,
            action=action,
            target=str(target)[:254],
            old_value=old,
            new_value=new,
            ip_address=meta.ip_address if meta else None,
            request_id=meta.request_id if meta else "",
        )
