"""Console forms for users and allocations. They parse input into ints; services decide."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.models import User
from asksage_admin.core.fields import TokenCountField
from tokens.pool import AllocationChange


class AddUserForm(forms.Form):
    email = forms.EmailField(
        label="Email",
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "off"}),
    )


class AllocationForm(forms.Form):
    """Both allocations of one user; the hidden fields carry the values as loaded."""

    max_inference_tokens = TokenCountField(
        label="Max Inference Tokens",
        help_text="Per calendar month. At least 200,000 while the user is Paid.",
    )
    max_embedding_tokens = TokenCountField(
        label="Max Embedding Tokens",
        help_text="Lifetime training/embedding tokens.",
    )
    loaded_inference = TokenCountField(widget=forms.HiddenInput)
    loaded_embedding = TokenCountField(widget=forms.HiddenInput)

    @classmethod
    def for_user(cls, user: User, data: Any = None) -> AllocationForm:
        initial = {
            "max_inference_tokens": f"{user.max_inference_tokens:,}",
            "max_embedding_tokens": f"{user.max_embedding_tokens:,}",
            "loaded_inference": user.max_inference_tokens,
            "loaded_embedding": user.max_embedding_tokens,
        }
        return cls(data, initial=initial)

    def changes(self, user: User) -> list[AllocationChange]:
        data = self.cleaned_data
        return [
            AllocationChange(
                user.pk, "inference", data["max_inference_tokens"], data["loaded_inference"]
            ),
            AllocationChange(
                user.pk, "embedding", data["max_embedding_tokens"], data["loaded_embedding"]
            ),
        ]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=User.Role.choices, label="Role")


class BulkAddForm(forms.Form):
    """Either pasted addresses or a CSV file; tokens.bulk parses and checks them."""

    emails = forms.CharField(
        label="Paste addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "autocomplete": "off", "spellcheck": "false"}),
        help_text="One per line, or separated by commas or semicolons.",
    )
    file = forms.FileField(
        label="Or upload a CSV file",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
        help_text=(
            "UTF-8, at most 5 MB and 5,000 rows, with a header line: "
            "<code>email,full_name,max_inference,max_embedding,role</code> "
            "(only <code>email</code> is required)."
        ),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool((data.get("emails") or "").strip()) == bool(data.get("file")):
            raise forms.ValidationError("Paste addresses or choose a CSV file (one of the two).")
        return data


class DateInput(forms.DateInput):
    input_type = "date"


class UsageRequestForm(forms.Form):
    """A person's ask for more tokens (on /settings/)."""

    pool = forms.ChoiceField(
        label="Pool",
        choices=[
            ("inference", "Inference tokens (monthly)"),
            ("embedding", "Embedding tokens (lifetime)"),
        ],
    )
    amount = TokenCountField(label="How many more tokens", help_text="For example 200,000.")
    reason = forms.CharField(
        label="Why you need them",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    until = forms.DateField(
        label="Needed until (optional)",
        required=False,
        widget=DateInput,
        help_text="Inference only. Leave empty for a permanent increase.",
    )


class ApproveForm(forms.Form):
    amount = TokenCountField(label="Amount to give")
    until = forms.DateField(
        label="Until (optional)",
        required=False,
        widget=DateInput,
        help_text="Empty: a permanent increase.",
    )
    note = forms.CharField(label="Note to the person (optional)", max_length=500, required=False)


class DeclineForm(forms.Form):
    note = forms.CharField(label="Reason", max_length=500)


class TemporaryForm(forms.Form):
    """'+N inference tokens until DATE' on a user's page."""

    extra = TokenCountField(label="Extra inference tokens")
    until = forms.DateField(
        label="Until (last day, inclusive)",
        widget=DateInput,
        help_text="It ends at midnight after this day in your organization's time zone.",
    )
