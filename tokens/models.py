"""The purchase ledger: what an enterprise bought. Rows are never edited or deleted."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Enterprise
from metrics.models import AppendOnlyModel


class PurchaseQuerySet(models.QuerySet):
    def totals(self) -> dict[str, int]:
        """Sums of the ledger; the enterprise's purchased pools (SPEC §3)."""
        sums = self.aggregate(
            inference=models.Sum("inference_tokens", default=0),
            training=models.Sum("training_tokens", default=0),
        )
        return {"inference": int(sums["inference"]), "training": int(sums["training"])}


class TokenPurchase(AppendOnlyModel):
    """One ledger line. A correction is a new line with negative amounts.

    Written only by tokens.services.record_purchase, which refuses a correction that would
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
