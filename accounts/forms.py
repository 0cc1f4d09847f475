"""Forms for sign-up, sign-in and the MFA steps."""

from __future__ import annotations

import unicodedata
from typing import Any, cast

from django import forms
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm

from accounts.models import User

# Bidirectional overrides and isolates: they make "evil.test" display as something else.
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def refuse_control_characters(value: str) -> None:
    """Names and emails end up in tables, CSV exports and logs: no control characters there."""
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS:
            raise forms.ValidationError(
                "Remove the control character (a tab, line break or invisible character).",
                code="control_character",
            )


class RegistrationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")
        labels = {"full_name": "Full name"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].widget.attrs.update(autocomplete="email", autofocus=True)
        self.fields["full_name"].required = False
        for name in ("email", "full_name"):
            self.fields[name].validators.append(refuse_control_characters)
            # Check before Django strips, so a trailing tab or newline is refused too.
            cast(forms.CharField, self.fields[name]).strip = False

    def clean_email(self) -> str:
        # A taken address is not an error here: the page must not tell whether it exists
        # (the service emails the owner instead).
        return self.cleaned_data["email"].strip().lower()

    def clean_full_name(self) -> str:
        return self.cleaned_data["full_name"].strip()

    def _get_validation_exclusions(self) -> set[str]:
        # Uniqueness of the email (a field and a constraint) is the service's business: it
        # answers a taken address without a hint. The form field still validates the format.
        return super()._get_validation_exclusions() | {"email"}  # type: ignore[misc]  # private hook


class SignInForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    error_messages = {
        "invalid_login": "That email and password do not match an active account.",
        "inactive": "This account is disabled. Contact your organization's administrator.",
        "unconfirmed": (
            "Confirm your email address first: open the link we emailed to you. "
            "We have just sent a new one."
        ),
        "banned": "Your account has been disabled by your organization's administrator.",
    }

    def _failed_user_with_right_password(self, **match: Any) -> User | None:
        """After a failed sign-in: the matching account, only if the password was right.

        Only someone who knows the password learns that the account exists (or why it
        cannot sign in); a wrong password or an unknown email reads the same as ever.
        """
        email = self.cleaned_data.get("username")
        if not email or "username" in self.errors:
            return None
        user = User.objects.filter(email__iexact=email, **match).first()
        if user is None or not user.check_password(self.data.get("password") or ""):
            return None
        return user

    def unconfirmed_user(self) -> User | None:
        """The account if the password was right but the email unconfirmed."""
        return self._failed_user_with_right_password(email_confirmed=False)

    def banned_user(self) -> User | None:
        """The account if the password was right but an admin disabled it (Banned)."""
        return self._failed_user_with_right_password(status=User.Status.BANNED, is_active=True)


class ReauthForm(forms.Form):
    """Password and a current code, asked before the second factor itself is changed."""

    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    current_code = forms.CharField(
        label="Current code from your authenticator app (or a backup code)",
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "class": "code-input"}),
    )

    def clean_current_code(self) -> str:
        code = "".join(self.cleaned_data["current_code"].split()).lower()
        if not code.isalnum():
            raise forms.ValidationError("Enter the code exactly as shown, letters and digits only.")
        return code


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
