"""Usage ledger, monthly roll-ups, integrations and their keys.

Pages read the roll-ups (MonthlyUsage, UsageTotal, EnterpriseMonthlyUsage, DailyUsage), never
the ledger; metrics.ingest updates all of them in the same transaction as the events, and
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
    shared by all its keys, so rotating a key never counts an event twice (UsageEventKey).

    On PostgreSQL the table is partitioned by RANGE (month), one partition a month plus a
    DEFAULT one (metrics.partitions); Django sees one ordinary table.
    """

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
            # PostgreSQL partitions the ledger by month, and a partitioned table's unique
            # constraints must hold the partition key. An event id is counted once whatever
            # month it claims: UsageEventKey holds that rule; this index finds the row.
            models.UniqueConstraint(
                fields=["integration", "event_id", "month"], name="usage_event_id_month"
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


class UsageEventKey(models.Model):
    """The idempotency record: an integration's event id, counted once, forever.

    Unpartitioned, so its primary key can be (integration, event_id) without the month:
    ingest inserts here ON CONFLICT DO NOTHING and puts only the returned ids in the
    ledger. It keeps what a replay is compared with (user, kind, tokens, occurred_at,
    model), so answering a duplicate never searches the ledger's partitions (planning a
    statement over every partition costs more than the lookup), and a replay of an archived
    month (detach_usage_partition) is still answered. `month` names the ledger partition.
    """

    pk = models.CompositePrimaryKey("integration_id", "event_id")
    integration = models.ForeignKey(
        Integration, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    event_id = models.CharField(max_length=128)
    month = models.DateField()
    # A copy of the ledger row's content; no constraint: the ledger row has them.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(max_length=16, choices=UsageKind.choices)
    tokens = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    model = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return f"{self.integration_id}:{self.event_id}"


class DetachedUsageMonth(models.Model):
    """A ledger month whose partition was detached for archiving.

    reconcile_usage compares the attached months only; the detached month's roll-ups,
    checked against its ledger rows just before detaching, stand in for them in the
    lifetime totals.
    """

    month = models.DateField(unique=True)
    table = models.CharField(max_length=63)
    events = models.BigIntegerField()
    detached_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["month"]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} ({self.table})"


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


class DailyUsage(models.Model):
    """Roll-up: a user's tokens on one calendar day of the enterprise's time zone.

    Feeds the burn-rate forecast (metrics.forecast): the monthly roll-up cannot tell a
    steady user from one who spent everything yesterday.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="daily_usage",
        # The unique (user, day) index serves the per-user window.
        db_index=False,
    )
    enterprise = models.ForeignKey(
        Enterprise, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    inference_tokens = models.BigIntegerField(default=0)
    embedding_tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "day"], name="daily_usage_user_day"),
            models.CheckConstraint(
                condition=models.Q(inference_tokens__gte=0, embedding_tokens__gte=0),
                name="daily_usage_non_negative",
            ),
        ]
        indexes = [
            # Dashboard forecast: an enterprise's days in the trailing window.
            # The Dashboard's enterprise forecast sums 14 days of every user: index-only.
            models.Index(
                fields=["enterprise", "day"],
                include=["inference_tokens", "embedding_tokens"],
                name="daily_usage_ent_day_cov_idx",
            ),
            # Users sorted by Runs out: one probe per user over its window days, answered
            # from the index alone (no heap visits): 3.8 s -> 0.2-0.5 s for 10,000 users.
            models.Index(fields=["user", "day", "inference_tokens"], name="daily_usage_burn_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.day:%Y-%m-%d}"


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


def default_alert_thresholds() -> list[int]:
    return [80, 100]


class AlertRecipients(models.TextChoices):
    USER = "user", "The user"
    ADMINS = "admins", "The enterprise's admins"
    BOTH = "both", "The user and the admins"


class AlertSettings(models.Model):
    """An enterprise's usage-alert choices; no row means the defaults (80 % and 100 %, both).

    The ingest statement reads `thresholds` (a JSON list of whole percentages) and `enabled`
    directly, so they stay plain columns; metrics.alerts validates them.
    """

    enterprise = models.OneToOneField(
        Enterprise, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    enabled = models.BooleanField(default=True)
    thresholds = models.JSONField(default=default_alert_thresholds)
    recipients = models.CharField(
        max_length=16, choices=AlertRecipients.choices, default=AlertRecipients.BOTH
    )
    extra_emails = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"alerts of {self.enterprise_id}"


class AlertPool(models.TextChoices):
    INFERENCE = "inference", "Monthly inference allocation"
    TRAINING = "training", "Training pool"


class UsageAlert(models.Model):
    """One threshold crossing, and the outbox row of its email.

    The ingest statement inserts it in the same transaction as the usage that crossed the
    threshold; the unique indexes make that exactly once per (user, threshold, month) for a
    user's monthly inference allocation and per (enterprise, threshold, pool size) for the
    enterprise's training pool (a purchase starts a new period). `manage.py deliver_alerts`
    sends the email and retries with back-off until it leaves (sent_at).
    """

    enterprise = models.ForeignKey(
        Enterprise, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # Null for an enterprise's training-pool alert.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    pool = models.CharField(max_length=16, choices=AlertPool.choices)
    threshold = models.PositiveSmallIntegerField()
    # First day of the month (enterprise's zone) the crossing happened in.
    period = models.DateField()
    cap = models.BigIntegerField()  # the allocation or purchased pool crossed
    used = models.BigIntegerField()  # the total that crossed it
    created_at = models.DateTimeField(default=timezone.now)
    # Outbox: the worker sends while sent_at is null, no earlier than next_attempt_at.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_to = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "threshold", "period"],
                condition=models.Q(pool="inference"),
                name="usage_alert_user_month",
            ),
            models.UniqueConstraint(
                fields=["enterprise", "threshold", "cap"],
                condition=models.Q(pool="training"),
                name="usage_alert_pool_period",
            ),
            models.CheckConstraint(
                condition=models.Q(threshold__gte=1, threshold__lte=100),
                name="usage_alert_threshold_range",
            ),
        ]
        indexes = [
            # The Dashboard's last alerts.
            models.Index(fields=["enterprise", "-created_at"], name="usage_alert_recent_idx"),
            # The worker's queue: only undelivered rows are in it.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(sent_at__isnull=True),
                name="usage_alert_outbox_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pool} {self.threshold}% {self.period:%Y-%m}"


class MonthlyStatement(AppendOnlyModel):
    """An enterprise's frozen account of one closed month (metrics.statements, close_month).

    `content` is the whole statement; `sha256` the digest of its canonical JSON, so anyone
    can check a statement was not altered. Never edited: usage reported after the close is
    booked as an adjustment line on a later statement. The totals are copied into columns
    for the list page, which must not load every statement's content.
    """

    enterprise = models.ForeignKey(
        Enterprise, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    month = models.DateField(help_text="First day of the closed month (enterprise time zone).")
    closed_at = models.DateTimeField(default=timezone.now)
    content = models.JSONField()
    sha256 = models.CharField(max_length=64)
    inference_tokens = models.BigIntegerField(default=0)
    embedding_tokens = models.BigIntegerField(default=0)
    adjustment_lines = models.IntegerField(default=0)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-month"]
        constraints = [
            models.UniqueConstraint(
                fields=["enterprise", "month"], name="monthly_statement_once_per_month"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.enterprise_id} {self.month:%Y-%m} statement"

    @property
    def period(self) -> str:
        return f"{self.month:%Y-%m}"
