"""Console forms of the metrics app: input is parsed here, the services decide."""

from __future__ import annotations

from typing import Any

from django import forms

from asksage_admin.core.errors import Refused
from metrics import alerts
from metrics.models import AlertRecipients, AlertSettings


class AlertSettingsForm(forms.Form):
    enabled = forms.BooleanField(label="Send usage alerts", required=False)
    thresholds = forms.CharField(
        label="Thresholds (%)",
        max_length=40,
        help_text="Whole percentages from 1 to 100, separated by commas, e.g. 80, 100.",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    recipients = forms.ChoiceField(
        label="Monthly inference alerts go to",
        choices=AlertRecipients.choices,
        widget=forms.RadioSelect,
        help_text="Training-pool alerts always go to the admins.",
    )
    extra_emails = forms.CharField(
        label="Also send to (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text=f"Up to {alerts.MAX_EXTRA_EMAILS} addresses, one per line or comma-separated.",
    )

    @classmethod
    def for_settings(cls, chosen: AlertSettings, data: Any = None) -> AlertSettingsForm:
        initial = {
            "enabled": chosen.enabled,
            "thresholds": ", ".join(str(t) for t in chosen.thresholds),
            "recipients": chosen.recipients,
            "extra_emails": "\n".join(chosen.extra_emails),
        }
        return cls(data, initial=initial)

    def clean_thresholds(self) -> list[int]:
        try:
            return alerts.parse_thresholds(self.cleaned_data["thresholds"])
        except Refused as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_extra_emails(self) -> list[str]:
        try:
            return alerts.parse_extra_emails(self.cleaned_data["extra_emails"])
        except Refused as exc:
            raise forms.ValidationError(exc.message) from None
