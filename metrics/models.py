"""Usage ledger, monthly roll-ups, integrations and their keys.

Pages read the roll-ups (MonthlyUsage, UsageTotal, EnterpriseMonthlyUsage), never the
ledger; metrics.ingest updates all of them in the same transaction as the events, and
`manage.py reconcile_usage` proves they agree.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F
from django.utils import timezone

from accounts.models import Enterprise
from asksage_admin.core.models import AppendOnlyModel, AppendOnlyQuerySet


class Integration(models.Model):
    """A platform service that reports usage. It owns its keys (several live while one is
    rotated) and its event ids, whichever of its keys carried them."""

    name = models.CharField(max_length=100, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class IntegrationKeyQuerySet(models.QuerySet):
    def active(self) -> IntegrationKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class IntegrationKey(models.Model):
    """One API key of an integration. Only the SHA-256 digest is kept; shown once."""

    # PROTECT: an integration's usage events point at it; keys are revoked, never deleted.
    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="keys")
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise a key.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = IntegrationKeyQuerySet.as_manager()

    class Meta:
        ordering = ["integration__name", "created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def name(self) -> str:
        """The integration's name: what logs and screens call the key."""
        return self.integration.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class UsageKind(models.TextChoices):
    INFERENCE = "inference", "Inference"
    EMBEDDING = "embedding", "Embedding"


class UsageEvent(AppendOnlyModel):
    """One report of tokens consumed. `event_id` is the integration's idempotency key,
    shared by all its keys, so rotating a key never counts an event twice."""

    # No index of its own on these FKs: each is the prefix of an index below, and every
    # extra index is one more write per ingested event.
    integration = models.ForeignKey(
        Integration, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    event_id = models.CharField(max_length=128)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    enterprise = models.ForeignKey(
        Enterprise, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=16, choices=UsageKind.choices)
    tokens = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    # First day of the calendar month of occurred_at in the enterprise's time zone: the roll-up key.
    month = models.DateField()
    model = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "event_id"],
                name="usage_event_idempotency",
                violation_error_message="This event id was already reported by this integration.",
            ),
            models.CheckConstraint(
                condition=models.Q(tokens__gt=0),
                name="usage_event_tokens_positive",
                violation_error_message="Tokens must be a positive whole number.",
            ),
        ]
        indexes = [
            # reconcile_usage: GROUP BY user_id, month over one enterprise at a time.
            models.Index(fields=["enterprise", "user", "month"], name="usage_event_rollup_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id}: {self.tokens} {self.kind}"


class MonthlyUsage(models.Model):
    """Roll-up: a user's tokens in one calendar month of the enterprise's time zone."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="monthly_usage",
        # The unique (user, month) index serves user lookups; a second user_id index made
        # the planner probe all of a user's months instead of the one it needs.
        db_index=False,
    )
    enterprise = models.ForeignKey(
        Enterprise, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    month = models.DateField()
    inference_tokens = models.BigIntegerField(default=0)
    embedding_tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "month"], name="monthly_usage_user_month"),
            models.CheckConstraint(
                condition=models.Q(inference_tokens__gte=0, embedding_tokens__gte=0),
                name="monthly_usage_non_negative",
            ),
        ]
        indexes = [
            # Users table sorted by this/previous month: WHERE enterprise_id = ? AND month = ?
            # AND inference_tokens > 0 ORDER BY inference_tokens (metrics.user_usage.usage_split);
            # user_id in the index lets the count and the anti-join of users at zero read
            # the index alone.
            models.Index(
                fields=["enterprise", "month", "inference_tokens", "user"],
                name="monthly_usage_ent_month_u_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.month:%Y-%m}"


class UsageTotal(models.Model):
    """Roll-up: a user's tokens since creation (also the lifetime embedding quota)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="usage_total",
    )
    enterprise = models.ForeignKey(
        Enterprise, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    inference_tokens = models.BigIntegerField(default=0)
    embedding_tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(inference_tokens__gte=0, embedding_tokens__gte=0),
                name="usage_total_non_negative",
            ),
        ]
        indexes = [
            # Token Usage page, top users: WHERE enterprise_id = ? ORDER BY total DESC LIMIT 10.
            models.Index(fields=["enterprise"], name="usage_total_enterprise_idx"),
            # Users table sorted by Total Usage (metrics.user_usage.usage_split): the users
            # above zero in order, WHERE enterprise_id = ? AND total > 0 ORDER BY total.
            models.Index(
                F("enterprise"),
                F("inference_tokens") + F("embedding_tokens"),
                F("user"),
                name="usage_total_sort_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} total"


class EnterpriseMonthlyUsage(models.Model):
    """Roll-up: an enterprise's tokens per month and model, for the statistics pages."""

    enterprise = models.ForeignKey(
        Enterprise, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    month = models.DateField()
    model = models.CharField(max_length=100, blank=True)
    inference_tokens = models.BigIntegerField(default=0)
    embedding_tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enterprise", "month", "model"], name="enterprise_usage_month_model"
            ),
            models.CheckConstraint(
                condition=models.Q(inference_tokens__gte=0, embedding_tokens__gte=0),
                name="enterprise_usage_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.enterprise_id} {self.month:%Y-%m} {self.model}"


class ReconcileRunQuerySet(models.QuerySet):
    def last_passed(self) -> ReconcileRun | None:
        """The most recent run that found no drift (the Dashboard's "last reconciled")."""
        return self.filter(ok=True).order_by("-started_at", "-id").first()


class ReconcileRun(models.Model):
    """The outcome of one `reconcile_usage`; the Dashboard shows the last pass."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    drift_count = models.IntegerField(default=0)
    details = models.JSONField(default=list, blank=True)

    objects = ReconcileRunQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"reconcile {self.started_at:%Y-%m-%d %H:%M} ok={self.ok}"
