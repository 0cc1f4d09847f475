"""Forms for sign-up, sign-in and the MFA steps."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm

from accounts.models import User


class RegistrationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")
        labels = {"full_name": "Full name"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].widget.attrs.update(autocomplete="email", autofocus=True)
        self.fields["full_name"].required = False

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        # Unique regardless of case: Ann@x.org and ann@x.org are one person.
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(
                "An account with this email address already exists. Sign in or reset your password."
            )
        return email


class SignInForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    error_messages = {
        "invalid_login": "That email and password do not match an active account.",
        "inactive": "This account is disabled. Contact your organization's administrator.",
    }


class CodeForm(forms.Form):
    """A 6-digit TOTP code, or (at verification) an 8-character backup code."""

    code = forms.CharField(
        label="Code",
        max_length=16,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "class": "code-input",
                "placeholder": "123456",
            }
        ),
    )

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data["code"].split()).lower()
        if not code.isalnum():
            raise forms.ValidationError("Enter the code exactly as shown, letters and digits only.")
        return code


class VerifyCodeForm(CodeForm):
    """At verification a backup code (letters) is allowed too: no digits-only phone keypad."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].widget.attrs.update(
            inputmode="text", autocapitalize="off", spellcheck="false"
        )
