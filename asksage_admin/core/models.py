"""Foundations shared by every app: append-only ledgers and the activity log.

The activity log sits here, below every domain app, because every layer writes it
(sign-ins, allocation changes, API key use). Its foreign keys name the user and enterprise
models by string so this module imports no app above it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NoReturn

from django.conf import settings
from django.db import models, transaction
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from asksage_admin.core.chain import GENESIS, RECORD_FIELDS, canonical_record, chain_hash

if TYPE_CHECKING:
    from accounts.models import Enterprise


class AppendOnlyError(Exception):
    pass


class AppendOnlyModel(models.Model):
    """Rows of a ledger or log: inserted once, never updated or deleted."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are never edited")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError(f"{type(self).__name__} rows are never deleted")


class AppendOnlyQuerySet(models.QuerySet):
    """Bulk edits are refused too, not only row.save() and row.delete()."""

    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError(f"{self.model.__name__} rows are never edited")

    def delete(self) -> NoReturn:
        raise AppendOnlyError(f"{self.model.__name__} rows are never deleted")


class ActivityLogQuerySet(AppendOnlyQuerySet):
    def for_enterprise(self, enterprise: Enterprise) -> ActivityLogQuerySet:
        return self.filter(enterprise=enterprise)

    def bulk_create(
        self, objs: Iterable[ActivityLog], *args: Any, **kwargs: Any
    ) -> list[ActivityLog]:
        """Chained like save(): every way into the table goes through the chain head."""
        objs = list(objs)
        with transaction.atomic(using=self.db, savepoint=False):
            chain_rows(objs)
            return super().bulk_create(objs, *args, **kwargs)


class ActivityLog(AppendOnlyModel):
    """Who did what, when, from where. Written only by asksage_admin.core.audit.log_activity."""

    class Action(models.TextChoices):
        SIGN_IN = "sign_in", "Signed in"
        SIGN_IN_FAILED = "sign_in_failed", "Failed sign-in"
        SIGN_OUT = "sign_out", "Signed out"
        REGISTERED = "registered", "Registered"
        PASSWORD_RESET = "password_reset", "Password reset"
        MFA_ENROLLED = "mfa_enrolled", "MFA enrolled"
        MFA_VERIFIED = "mfa_verified", "MFA verified"
        MFA_FAILED = "mfa_failed", "MFA failure"
        BACKUP_CODE_USED = "backup_code_used", "Backup code used"
        BACKUP_CODES_REGENERATED = "backup_codes_regenerated", "Backup codes regenerated"
        ENTERPRISE_CREATED = "enterprise_created", "Enterprise created"
        ENTERPRISE_UPDATED = "enterprise_updated", "Enterprise updated"
        ENTERPRISE_ACTIVATED = "enterprise_activated", "Enterprise activated"
        ENTERPRISE_ACTIVATION_REFUSED = "enterprise_activation_refused", "Activation refused"
        ENTERPRISE_SUSPENDED = "enterprise_suspended", "Enterprise suspended"
        ENTERPRISE_REACTIVATED = "enterprise_reactivated", "Enterprise reactivated"
        PURCHASE_RECORDED = "purchase_recorded", "Purchase recorded"
        USER_ATTACHED = "user_attached", "User attached"
        USER_ADDED = "user_added", "User added"
        USER_INVITED = "user_invited", "User invited"
        USER_DISABLED = "user_disabled", "User disabled"
        USER_ACTIVATED = "user_activated", "User activated"
        ROLE_CHANGED = "role_changed", "Role changed"
        ALLOCATION_CHANGED = "allocation_changed", "Allocation changed"
        EXPORT_DOWNLOADED = "export_downloaded", "Export downloaded"
        API_KEY_CREATED = "api_key_created", "API key created"
        API_KEY_REVOKED = "api_key_revoked", "API key revoked"
        API_KEY_USED = "api_key_used", "API key used"
        INVITATION_DECLINED = "invitation_declined", "Invitation declined"
        INVITATION_RESENT = "invitation_resent", "Invitation resent"
        INVITATION_REVOKED = "invitation_revoked", "Invitation revoked"
        ACCOUNT_CREATED = "account_created", "Account created by staff"
        ACCOUNT_UPDATED = "account_updated", "Account changed by staff"
        MFA_DEVICE_REMOVED = "mfa_device_removed", "MFA device removed by staff"
        ALERT_SETTINGS_CHANGED = "alert_settings_changed", "Usage alert settings changed"
        USAGE_REQUESTED = "usage_requested", "More tokens requested"
        USAGE_REQUEST_APPROVED = "usage_request_approved", "Token request approved"
        USAGE_REQUEST_DECLINED = "usage_request_declined", "Token request declined"
        TEMPORARY_ALLOCATION_GRANTED = "temporary_allocation_granted", "Temporary tokens granted"
        TEMPORARY_ALLOCATION_ENDED = "temporary_allocation_ended", "Temporary tokens ended"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Frozen copy: the log must still say who it was after the account changes or goes.
    actor_email = models.CharField(max_length=254, blank=True)
    enterprise = models.ForeignKey(
        "accounts.Enterprise",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # the (enterprise, created_at) index below starts with it
    )
    action = models.CharField(max_length=40, choices=Action.choices)
    target = models.CharField(max_length=254, blank=True)
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    # The hash chain (asksage_admin.core.chain): position, the previous row's hash, and
    # SHA-256(prev_hash + canonical JSON of this row). prev_hash is stored so any single row
    # of a filtered CSV export can be checked offline.
    seq = models.BigIntegerField(unique=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = ActivityLogQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Activity Logs page: WHERE enterprise_id = ? ORDER BY created_at DESC, id DESC.
            models.Index(
                fields=["enterprise", "-created_at", "-id"], name="activity_enterprise_time_idx"
            ),
            # Same page filtered by action.
            models.Index(
                fields=["enterprise", "action", "-created_at"], name="activity_action_time_idx"
            ),
            # Verify an export: an enterprise's download with this SHA-256. Partial, so only
            # export rows pay for it on insert.
            models.Index(
                models.F("enterprise"),
                KeyTextTransform("sha256", "new_value"),
                name="activity_export_sha256_idx",
                condition=models.Q(action="export_downloaded"),
            ),
            # Filtered by actor email (icontains): a pg_trgm GIN index on UPPER(actor_email),
            # created by migration 0005 on PostgreSQL only (not declared here: SQLite has none).
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_email} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            super().save(*args, **kwargs)  # refused by AppendOnlyModel
            return
        with transaction.atomic(using=kwargs.get("using"), savepoint=False):
            chain_rows([self])
            super().save(*args, **kwargs)


class ActivityChainHead(models.Model):
    """The one row that says where the activity-log chain ends.

    Writers lock it (SELECT ... FOR UPDATE) inside their transaction, so two transactions
    can never both extend the chain from the same row; verification compares the last
    row with it, so removing rows at the end of the log is caught too.
    """

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"chain head #{self.seq}"


class ChainVerificationQuerySet(models.QuerySet):
    def latest_run(self) -> ChainVerification | None:
        return self.order_by("-started_at", "-id").first()


class ChainVerification(models.Model):
    """The outcome of one `verify_activity_log`; the Dashboard and Activity Logs show the last."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    rows_checked = models.BigIntegerField(default=0)
    verified_by = models.CharField(max_length=254, blank=True)
    problem = models.TextField(blank=True)

    objects = ChainVerificationQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"chain check {self.started_at:%Y-%m-%d %H:%M} ok={self.ok}"


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


def chain_rows(rows: list[ActivityLog]) -> None:
    """Give new `rows` the next sequence numbers and hashes, and move the head past them.

    Call inside a transaction: the head stays locked until it ends, so no other writer
    can chain from the same row (the chain cannot fork).
    """
    head = _locked_head()
    seq, prev = head.seq, head.hash
    ip_field = ActivityLog._meta.get_field("ip_address")
    for row in rows:
        seq += 1
        if row.ip_address:
            # As the database will give it back (IPv6 normalised), so the hash matches.
            row.ip_address = ip_field.get_prep_value(row.ip_address)
        row.seq, row.prev_hash = seq, prev
        values = {name: getattr(row, name) for name in RECORD_FIELDS}
        row.hash = prev = chain_hash(prev, canonical_record(values))
    head.seq, head.hash = seq, prev
    head.save(update_fields=["seq", "hash"])


class RateBucket(models.Model):
    """One token bucket of a request limit (asksage_admin.core.ratelimit), a row per key.

    In the database so that every gunicorn worker, on every host, draws from the same bucket
    without another server; one UPSERT a request reads and refills it.
    """

    key = models.CharField(max_length=100, primary_key=True)
    tokens = models.FloatField()
    updated_at = models.FloatField(help_text="Unix time of the last refill.")
    allowed = models.BooleanField(default=True, help_text="Whether the last request passed.")

    class Meta:
        db_table = "rate_bucket"

    def __str__(self) -> str:
        return f"{self.key}: {self.tokens:.1f}"
