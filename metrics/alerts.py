"""Usage alerts: an email when a user crosses a share of their monthly inference allocation,
or an enterprise a share of its purchased training pool.

Detection lives in the ingest statement (metrics.ingest_sql, the `alert_*` CTEs;
`raise_alerts` below on SQLite): the batch that takes a total from below a threshold to at
or past it inserts a UsageAlert row in the same transaction as the usage, and a unique index
keeps it to one per threshold and period whatever the concurrency. That row is the outbox:
`deliver_due` (run by `manage.py deliver_alerts`) sends it and, while the mail server
refuses, retries with back-off, so an alert is never lost and never sent per event.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Enterprise, User
from asksage_admin.core.audit import Action, log_activity
from asksage_admin.core.errors import Refused
from asksage_admin.core.formats import tokens as fmt
from metrics.models import (
    AlertPool,
    AlertRecipients,
    AlertSettings,
    EnterpriseMonthlyUsage,
    UsageAlert,
    default_alert_thresholds,
)
from tokens.models import TokenPurchase

logger = logging.getLogger(__name__)

MAX_THRESHOLDS = 5
MAX_EXTRA_EMAILS = 10
# Retry delays: 30 s, 1 min, 2 min ... capped at one hour, for as long as mail is down.
FIRST_RETRY = dt.timedelta(seconds=30)
MAX_RETRY = dt.timedelta(hours=1)


# --- Settings ---------------------------------------------------------------------------


def settings_for(enterprise: Enterprise) -> AlertSettings:
    """The enterprise's choices; the defaults (unsaved) when an admin never changed them."""
    found = AlertSettings.objects.filter(enterprise=enterprise).first()
    return found or AlertSettings(enterprise=enterprise)


def parse_thresholds(text: str) -> list[int]:
    """ "80, 100" -> [80, 100]: whole percentages 1-100, sorted, no repeats."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    if not parts:
        raise Refused("Enter at least one threshold, e.g. 80, 100.", rows={"thresholds": ""})
    values = set()
    for part in parts:
        if not part.isdigit() or not 1 <= int(part) <= 100:
            raise Refused(
                f"“{part[:20]}” is not a whole percentage from 1 to 100.",
                rows={"thresholds": "Whole percentages from 1 to 100."},
            )
        values.add(int(part))
    if len(values) > MAX_THRESHOLDS:
        raise Refused(
            f"At most {MAX_THRESHOLDS} thresholds.", rows={"thresholds": "Too many thresholds."}
        )
    return sorted(values)


def parse_extra_emails(text: str) -> list[str]:
    """Extra addresses, one per line or separated by commas; lower-cased, no repeats."""
    parts = [p.strip().lower() for p in text.replace(";", ",").replace("\n", ",").split(",")]
    emails: list[str] = []
    for part in filter(None, parts):
        try:
            validate_email(part)
        except ValidationError:
            raise Refused(
                f"“{part[:60]}” is not an email address.",
                rows={"extra_emails": "Not an email address."},
            ) from None
        if part not in emails:
            emails.append(part)
    if len(emails) > MAX_EXTRA_EMAILS:
        raise Refused(
            f"At most {MAX_EXTRA_EMAILS} extra addresses.",
            rows={"extra_emails": "Too many addresses."},
        )
    return emails


@transaction.atomic
def update_settings(
    *,
    actor: User,
    enterprise: Enterprise,
    enabled: bool,
    thresholds: list[int],
    recipients: str,
    extra_emails: list[str],
) -> AlertSettings:
    """Save an admin's choices (already parsed) and log old -> new."""
    if recipients not in AlertRecipients.values:
        raise Refused("Choose who receives the alerts.", rows={"recipients": "Unknown choice."})
    if not thresholds or any(not 1 <= t <= 100 for t in thresholds):
        raise Refused("Thresholds are whole percentages from 1 to 100.", rows={"thresholds": ""})
    # Two admins saving the first settings at once: get_or_create re-reads the winner's row.
    current, _ = AlertSettings.objects.select_for_update().get_or_create(enterprise=enterprise)
    old = _as_dict(current)
    current.enabled, current.thresholds = enabled, sorted(set(thresholds))
    current.recipients, current.extra_emails = recipients, extra_emails
    current.updated_at, current.updated_by = timezone.now(), actor
    current.save()
    new = _as_dict(current)
    if new != old:
        log_activity(
            actor=actor,
            action=Action.ALERT_SETTINGS_CHANGED,
            enterprise=enterprise,
            target="usage alerts",
            old={k: v for k, v in old.items() if new[k] != v},
            new={k: v for k, v in new.items() if old[k] != v},
        )
    return current


def _as_dict(s: AlertSettings) -> dict:
    return {
        "enabled": s.enabled,
        "thresholds": list(s.thresholds),
        "recipients": s.recipients,
        "extra_emails": list(s.extra_emails),
    }


def recent_alerts(enterprise: Enterprise, limit: int = 5) -> list[UsageAlert]:
    """The Dashboard's last alerts: one query whatever the number of rows."""
    return list(
        UsageAlert.objects.filter(enterprise=enterprise)
        .select_related("user")
        .order_by("-created_at", "-id")[:limit]
    )


# --- Detection on databases other than PostgreSQL ---------------------------------------


def raise_alerts(
    *,
    monthly: dict[tuple[int, dt.date], int],
    added: dict[tuple[int, dt.date], int],
    users: dict[int, User],
    embedding: dict[int, dt.date],
    now: dt.datetime,
) -> None:
    """The SQLite twin of the ingest statement's alert CTEs, inside the ingest transaction.

    `monthly` maps (user, month) to inference after the batch and `added` to this batch's
    share of it: a threshold between the two was crossed by this batch. `embedding` maps
    each enterprise that recorded embedding tokens to the batch's latest month. The unique
    indexes decide duplicates (INSERT OR IGNORE), as ON CONFLICT DO NOTHING does on
    PostgreSQL.
    """
    enterprise_ids = {u.enterprise_id for u in users.values()} | set(embedding)
    chosen = {s.enterprise_id: s for s in AlertSettings.objects.filter(pk__in=enterprise_ids)}

    def thresholds(enterprise_id: int | None) -> list[int]:
        s = chosen.get(enterprise_id) if enterprise_id is not None else None
        if s is None:
            return default_alert_thresholds()
        return [int(t) for t in s.thresholds] if s.enabled else []

    due: list[tuple[int, int | None, str, int, dt.date, int, int]] = []
    for (user_id, month), used in monthly.items():
        user = users[user_id]
        cap = user.max_inference_tokens
        before = used - added.get((user_id, month), 0)
        for pct in thresholds(user.enterprise_id) if cap > 0 else []:
            if before * 100 < pct * cap <= used * 100:
                owner = cast(int, user.enterprise_id)  # ingest keeps enterprise users only
                due.append((owner, user_id, AlertPool.INFERENCE, pct, month, cap, used))
    for enterprise_id, month in embedding.items():
        used = EnterpriseMonthlyUsage.objects.filter(enterprise_id=enterprise_id).aggregate(
            n=Sum("embedding_tokens", default=0)
        )["n"]
        cap = TokenPurchase.objects.filter(enterprise_id=enterprise_id).totals()["training"]
        for pct in thresholds(enterprise_id) if cap > 0 else []:
            if used * 100 >= pct * cap:
                due.append((enterprise_id, None, AlertPool.TRAINING, pct, month, cap, used))
    if due:
        UsageAlert.objects.bulk_create(
            [
                UsageAlert(
                    enterprise_id=e,
                    user_id=u,
                    pool=pool,
                    threshold=pct,
                    period=month,
                    cap=cap,
                    used=used,
                    created_at=now,
                    next_attempt_at=now,
                )
                for e, u, pool, pct, month, cap, used in due
            ],
            ignore_conflicts=True,
        )


# --- Delivery ---------------------------------------------------------------------------


@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0


def deliver_due(*, now: dt.datetime | None = None, limit: int = 100) -> Delivery:
    """Send up to `limit` due alerts, one transaction each; failures wait and retry.

    Each row is claimed FOR UPDATE SKIP LOCKED, so several workers never send one alert
    twice; the row lock is held while the email leaves, and the outcome is saved with it.
    """
    report = Delivery()
    moment = now or timezone.now()
    tried: list[int] = []  # one attempt per alert and pass, whatever the back-off
    for _ in range(limit):
        with transaction.atomic():
            alert = (
                UsageAlert.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(sent_at__isnull=True, next_attempt_at__lte=moment)
                .exclude(pk__in=tried)
                .select_related("user", "enterprise")
                .order_by("next_attempt_at", "id")
                .first()
            )
            if alert is None:
                break
            tried.append(alert.pk)
            try:
                recipients = _send(alert)
            except Exception as exc:
                alert.attempts += 1
                delay = min(FIRST_RETRY * 2 ** (alert.attempts - 1), MAX_RETRY)
                alert.next_attempt_at = moment + delay
                alert.last_error = f"{type(exc).__name__}: {exc}"[:500]
                alert.save(update_fields=["attempts", "next_attempt_at", "last_error"])
                logger.warning(
                    "usage alert %s not sent (attempt %s), retrying in %s: %s",
                    alert.pk,
                    alert.attempts,
                    delay,
                    alert.last_error,
                )
                report.failed += 1
                continue
            alert.attempts += 1
            alert.sent_at, alert.sent_to, alert.last_error = timezone.now(), recipients, ""
            alert.save(update_fields=["attempts", "sent_at", "sent_to", "last_error"])
            report.sent += 1
    return report


def recipients_of(alert: UsageAlert, chosen: AlertSettings) -> list[str]:
    """Who gets it: the user and/or the admins (as chosen) plus the extra addresses.

    A training-pool alert concerns the whole enterprise, so it goes to the admins.
    """
    emails: list[str] = []
    to_user = alert.pool == AlertPool.INFERENCE and chosen.recipients != AlertRecipients.ADMINS
    to_admins = alert.pool == AlertPool.TRAINING or chosen.recipients != AlertRecipients.USER
    if to_user and alert.user is not None and not alert.user.is_banned:
        emails.append(alert.user.email)
    if to_admins:
        admins = (
            User.objects.admins()
            .filter(enterprise_id=alert.enterprise_id)
            .exclude(status=User.Status.BANNED)
            .order_by("email")
            .values_list("email", flat=True)
        )
        emails.extend(admins)
    emails.extend(chosen.extra_emails)
    return list(dict.fromkeys(emails))


def _send(alert: UsageAlert) -> list[str]:
    recipients = recipients_of(alert, settings_for(alert.enterprise))
    if not recipients:
        return []  # nobody left to tell (no admin, no extra address): done, not retried
    subject, body = _message(alert)
    EmailMessage(subject=subject, body=body, to=recipients).send()
    return recipients


def _message(alert: UsageAlert) -> tuple[str, str]:
    name = " ".join(alert.enterprise.name.split())  # one header line whatever the name holds
    month = f"{alert.period:%B %Y}"
    if alert.pool == AlertPool.INFERENCE:
        who = alert.user.email if alert.user else "a user"
        subject = f"AskSage: {who} reached {alert.threshold}% of the monthly inference allocation"
        body = (
            f"{who} ({name}) has used {fmt(alert.used)} of {fmt(alert.cap)} inference tokens "
            f"allocated for {month}: {alert.threshold}% or more.\n\n"
            "The allocation resets on the 1st of next month. An admin of the organization can "
            "raise it in the console (Users).\n"
        )
    else:
        subject = f"AskSage: {name} reached {alert.threshold}% of its training pool"
        body = (
            f"{name} has used {fmt(alert.used)} of the {fmt(alert.cap)} training (embedding) "
            f"tokens it purchased: {alert.threshold}% or more.\n\n"
            "Training tokens never reset. To buy more, contact your AskSage sales contact.\n"
        )
    return (
        subject,
        body + "\nYou receive this because of the organization's usage alert settings.\n",
    )


def pending(enterprise_ids: Iterable[int] | None = None) -> int:
    """Alerts not delivered yet (the worker's backlog), for operations."""
    rows = UsageAlert.objects.filter(sent_at__isnull=True)
    if enterprise_ids is not None:
        rows = rows.filter(enterprise_id__in=list(enterprise_ids))
    return rows.count()
