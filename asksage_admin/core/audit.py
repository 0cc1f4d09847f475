"""The one way to write the activity log; every layer calls it inside its own transaction.

Every row is chained (asksage_admin.core.chain): the writer locks the one chain-head row,
gives its rows the next sequence numbers and hashes, and moves the head, all inside the
caller's transaction. The lock is held until that transaction ends, so services write their
log rows last, after their own checks and writes, to keep it short.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction

from asksage_admin.core.chain import GENESIS, RECORD_FIELDS, canonical_record, chain_hash
from asksage_admin.core.middleware import current_request_meta
from asksage_admin.core.models import ActivityChainHead, ActivityLog

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
    with transaction.atomic():
        _chain([row])
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
    with transaction.atomic():
        _chain(rows)
        return ActivityLog.objects.bulk_create(rows)


def _locked_head() -> ActivityChainHead:
    """The chain head, locked until the caller's transaction ends (created when missing)."""
    head = ActivityChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        last = ActivityLog.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, hash_ = last or (0, GENESIS)
        ActivityChainHead.objects.bulk_create(
            [ActivityChainHead(pk=1, seq=seq, hash=hash_)], ignore_conflicts=True
        )
        head = ActivityChainHead.objects.select_for_update().get(pk=1)
    return head


_ip_field = ActivityLog._meta.get_field("ip_address")


def _chain(rows: list[ActivityLog]) -> None:
    """Give `rows` the next sequence numbers and hashes, and move the head past them."""
    head = _locked_head()
    seq, prev = head.seq, head.hash
    for row in rows:
        seq += 1
        if row.ip_address:
            row.ip_address = _ip_field.get_prep_value(row.ip_address)
        row.seq, row.prev_hash = seq, prev
        values = {name: getattr(row, name) for name in RECORD_FIELDS}
        row.hash = prev = chain_hash(prev, canonical_record(values))
    head.seq, head.hash = seq, prev
    head.save(update_fields=["seq", "hash"])
