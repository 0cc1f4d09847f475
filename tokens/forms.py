"""Console forms for users and allocations. They parse input; tokens.services decides."""

from __future__ import annotations

from django import forms

from accounts.models import User
from tokens.services import AllocationChange


class AddUserForm(forms.Form):
    email = forms.EmailField(
        label="Email",
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "off"}),
    )


class AllocationForm(forms.Form):
    """Both allocations of one user; the hidden fields carry the values as loaded."""

    max_inference_tokens = forms.CharField(
        label="Max Inference Tokens",
        max_length=30,
        help_text="Per calendar month. At least 200,000 while the user is Paid.",
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
    )
    max_embedding_tokens = forms.CharField(
        label="Max Embedding Tokens",
        max_length=30,
        help_text="Lifetime training/embedding tokens.",
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
    )
    loaded_inference = forms.CharField(widget=forms.HiddenInput)
    loaded_embedding = forms.CharField(widget=forms.HiddenInput)

    @classmethod
    def for_user(cls, user: User, data=None) -> AllocationForm:
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
