"""The purchase ledger (what an enterprise bought; never edited) and invitations to join."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower, Now
from django.utils import timezone

from accounts.models import Enterprise, User
from asksage_admin.core.models import AppendOnlyModel, AppendOnlyQuerySet


class PurchaseQuerySet(AppendOnlyQuerySet):
    def totals(self) -> dict[str, int]:
        """Sums of the ledger; the enterprise's purchased pools."""
        sums = self.aggregate(
            inference=models.Sum("inference_tokens", default=0),
            training=models.Sum("training_tokens", default=0),
        )
        return {"inference": int(sums["inference"]), "training": int(sums["training"])}


class TokenPurchase(AppendOnlyModel):
    """One ledger line. A correction is a new line with negative amounts.

    Written only by tokens.pool.record_purchase, which refuses a correction that would
    take the purchased pool below what is already assigned.
    """

    enterprise = models.ForeignKey(Enterprise, on_delete=models.PROTECT, related_name="purchases")
    inference_tokens = models.BigIntegerField(
        default=0, help_text="Monthly inference capacity bought (negative for a correction)."
    )
    training_tokens = models.BigIntegerField(
        default=0,
        help_text="Lifetime training/embedding tokens bought (negative for a correction).",
    )
    purchased_on = models.DateField(default=timezone.localdate)
    reference = models.CharField(max_length=100, help_text="Invoice or purchase order number.")
    note = models.CharField(max_length=300, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = PurchaseQuerySet.as_manager()

    class Meta:
        ordering = ["-purchased_on", "-id"]
        indexes = [
            # Pool totals: SUM(...) WHERE enterprise_id = ?
            models.Index(fields=["enterprise", "purchased_on"], name="purchase_enterprise_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(inference_tokens=0, training_tokens=0),
                name="purchase_not_empty",
                violation_error_message="A purchase line must move at least one pool.",
            ),
            models.CheckConstraint(
                condition=~models.Q(reference=""),
                name="purchase_has_reference",
                violation_error_message="A purchase line needs an invoice or PO reference.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.enterprise} {self.reference}"


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def pending(self, enterprise: Enterprise) -> InvitationQuerySet:
        """Not accepted, not expired, not revoked: the Users page's pending invitations."""
        return self.filter(
            enterprise=enterprise, accepted_at__isnull=True, expires_at__gt=timezone.now()
        )


class Invitation(models.Model):
    """An admin's invitation to join; the person accepts through the emailed link."""

    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    # Only the SHA-256 digest of the link's token is stored, like an API key.
    token_digest = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    # What a bulk import asked for; applied when the person accepts (None: the defaults).
    role = models.CharField(max_length=16, choices=User.Role.choices, blank=True)
    max_inference_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    max_embedding_tokens = models.PositiveBigIntegerField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Registration looks up open invitations by email.
            models.Index(Lower("email"), name="invitation_email_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.enterprise}"


def active_allocation(now: dt.datetime | Now | None = None) -> models.Q:
    """A temporary allocation still counts: not ended early and its end not reached (at `now`,
    or at the database's clock when given Now()).

    The one statement of the rule; raw SQL (the quota check, the pool totals, ingest) uses
    ACTIVE_SQL below, which says the same thing.
    """
    return models.Q(reverted_at__isnull=True, ends_at__gt=now or timezone.now())


class TemporaryAllocationQuerySet(models.QuerySet["TemporaryAllocation"]):
    def active(self, now: dt.datetime | Now | None = None) -> TemporaryAllocationQuerySet:
        return self.filter(active_allocation(now))

    def due(self, now: dt.datetime | None = None) -> TemporaryAllocationQuerySet:
        """Past their end but not yet marked ended (expire_allocations marks them)."""
        return self.filter(reverted_at__isnull=True, ends_at__lte=now or timezone.now())


# The same rule for raw SQL (alias x for tokens_temporaryallocation; {now} a placeholder).
ACTIVE_SQL = "x.reverted_at IS NULL AND x.ends_at > {now}"
# Inference tokens one user holds on top of Max Inference Tokens at an instant; an extra
# granted in another enterprise (the user has moved) never counts.
ACTIVE_EXTRA_SQL = (
    "(SELECT CAST(coalesce(sum(x.extra_inference), 0) AS BIGINT)"  # noqa: S608 (our names)
    " FROM tokens_temporaryallocation x WHERE x.user_id = {user}"
    f" AND x.enterprise_id = {{enterprise}} AND {ACTIVE_SQL})"
)


class TemporaryAllocation(models.Model):
    """ "+N inference tokens until DATE": on top of the user's Max Inference Tokens.

    The base allocation never changes, so there is nothing to undo: the extra simply stops
    counting at `ends_at` (the end of `until` in the enterprise's time zone, fixed when
    granted) for the quota, ingest and the pool alike. `reverted_at` records when it was
    marked ended (by expire_allocations, or an admin ending it early). At most one open
    (not yet marked ended) per user.
    """

    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="temporary_allocations")
    extra_inference = models.BigIntegerField()
    until = models.DateField(help_text="Last day it counts, in the enterprise's time zone.")
    ends_at = models.DateTimeField(help_text="The instant after `until` ends (local midnight).")
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    reverted_at = models.DateTimeField(null=True, blank=True)
    usage_request = models.OneToOneField(
        "UsageRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = TemporaryAllocationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(reverted_at__isnull=True),
                name="one_open_temporary_allocation",
                violation_error_message="This user already has a temporary allocation.",
            ),
            models.CheckConstraint(
                condition=models.Q(extra_inference__gt=0), name="temporary_allocation_positive"
            ),
        ]
        indexes = [
            # expire_allocations: open rows past their end.
            models.Index(
                fields=["ends_at"],
                condition=models.Q(reverted_at__isnull=True),
                name="temporary_allocation_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} +{self.extra_inference} until {self.until}"


class UsageRequest(models.Model):
    """A person asking their admins for more tokens; decided once (approved or declined)."""

    class Pool(models.TextChoices):
        INFERENCE = "inference", "Inference (monthly)"
        EMBEDDING = "embedding", "Embedding (lifetime)"

    class Status(models.TextChoices):
        OPEN = "open", "Waiting for an admin"
        APPROVED = "approved", "Approved"
        DECLINED = "declined", "Declined"

    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="usage_requests")
    pool = models.CharField(max_length=16, choices=Pool.choices)
    amount = models.BigIntegerField(help_text="Tokens asked for, on top of the allocation.")
    reason = models.CharField(max_length=500)
    until = models.DateField(null=True, blank=True, help_text="Only needed until this day.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    approved_amount = models.BigIntegerField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "pool"],
                condition=models.Q(status="open"),
                name="one_open_usage_request_per_pool",
                violation_error_message="You already have an open request for this pool.",
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="usage_request_positive"),
        ]
        indexes = [
            # The sidebar badge and the Requests page: open requests of one enterprise.
            models.Index(
                fields=["enterprise", "created_at"],
                condition=models.Q(status="open"),
                name="usage_request_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} +{self.amount} {self.pool} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN
