"""The purchase ledger (what an enterprise bought; never edited) and invitations to join."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
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
