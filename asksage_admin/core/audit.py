"""The one way to write the activity log; every layer calls it inside its own transaction.

Every row is chained as it is inserted (ActivityLog.save / bulk_create, see
asksage_admin.core.chain): the writer locks the one chain-head row, gives its rows the next
sequence numbers and hashes, and moves the head, all inside the caller's transaction.
The lock is held until that transaction ends, so services write their log rows last,
after their own checks and writes, to keep it short.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asksage_admin.core.middleware import current_request_meta
from asksage_admin.core.models import ActivityLog

if TYPE_CHECKING:
    from accounts.models import Enterprise, User

Action = ActivityLog.Action


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
    row = ActivityLog(
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
    row.save(force_insert=True)
    return row


def log_activities(entries: list[dict[str, Any]]) -> list[ActivityLog]:
    """Append many rows in one INSERT; each dict takes log_activity's keyword arguments.

    For writes that change many rows at once (a column of allocations), so the audit trail
    costs one query, not one per row.
    """
    if not entries:
        return []
    meta = current_request_meta()
    rows = []
    for entry in entries:
        actor = entry.get("actor")
        rows.append(
            ActivityLog(
                actor=actor if actor is not None and actor.pk else None,
                actor_email=(actor.email if actor is not None else entry.get("actor_email", ""))[
                    :254
                ],
                enterprise=entry.get("enterprise"),
                action=entry["action"],
                target=str(entry.get("target", ""))[:254],
                old_value=entry.get("old"),
                new_value=entry.get("new"),
                ip_address=meta.ip_address if meta else None,
                request_id=meta.request_id if meta else "",
            )
        )
    return ActivityLog.objects.bulk_create(rows)
