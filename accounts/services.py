"""Write rules for accounts: registration, sign-in records and the MFA steps.

Each function takes the acting user, runs in one transaction and writes its own
activity-log row (asksage_admin.core.audit.log_activity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils.crypto import constant_time_compare
from django.utils.http import base36_to_int
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import BackupCode, BackupCodeDevice, User
from asksage_admin.core.audit import Action, log_activity

BACKUP_CODE_COUNT = 10


class EmailConfirmationTokens(PasswordResetTokenGenerator):
    """Links that confirm a new account's address; they stop working once it is confirmed,
    and after EMAIL_CONFIRMATION_TIMEOUT (not the password-reset timeout)."""

    key_salt = "accounts.services.EmailConfirmationTokens"

    def _make_hash_value(self, user: User, timestamp: int) -> str:
        return f"{user.pk}{user.email}{user.email_confirmed}{timestamp}"

    def check_token(self, user: User | None, token: str | None) -> bool:
        if not (user and token):
            return False
        try:
            ts_b36, _ = token.split("-")
            ts = base36_to_int(ts_b36)
        except ValueError:
            return False
        if not any(
            constant_time_compare(self._make_token_with_timestamp(user, ts, secret), token)
            for secret in [self.secret, *self.secret_fallbacks]
        ):
            return False
        return self._num_seconds(self._now()) - ts <= settings.EMAIL_CONFIRMATION_TIMEOUT


email_confirmation_tokens = EmailConfirmationTokens()


def _email(user_email: str, template: str, ctx: dict) -> None:
    subject, _, body = render_to_string(template, ctx).partition("\n")
    send_mail(subject.strip(), body.lstrip("\n"), None, [user_email])


def register_user(
    *,
    email: str,
    password: str,
    full_name: str = "",
    address_proven: bool = False,
    confirm_link_for: Callable[[User], str] | None = None,
) -> User | None:
    """Register an account; it signs in only once its address is confirmed.

    The caller says the same thing whether or not the address was taken: a taken address
    gets a "someone tried to register" email instead of a new account (None is returned).
    """
    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None:
        make_password(password)  # same work as a new account: the timing tells nothing either
        log_activity(actor=existing, action=Action.REGISTERED, target="attempt on existing account")
        _email(existing.email, "accounts/email_registration_attempt.txt", {"user": existing})
        return None
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email, password=password, full_name=full_name, email_confirmed=address_proven
            )
            log_activity(actor=user, action=Action.REGISTERED, target=user.email)
    except IntegrityError:  # registered by a concurrent request a moment ago: same answer
        return None
    if not address_proven and confirm_link_for is not None:
        send_confirmation_email(user, confirm_link_for)
    return user


def send_confirmation_email(user: User, link_for: Callable[[User], str]) -> None:
    _email(user.email, "accounts/email_confirm.txt", {"user": user, "link": link_for(user)})


@transaction.atomic
def confirm_email(user: User) -> None:
    """The emailed link was opened: the address is the user's, the account may sign in."""
    updated = User.objects.filter(pk=user.pk, email_confirmed=False).update(email_confirmed=True)
    user.email_confirmed = True
    if updated:
        log_activity(actor=user, action=Action.REGISTERED, target="email confirmed")


@transaction.atomic
def end_other_sessions(*, user: User) -> None:
    """Bump the session generation: every session's auth hash goes stale at its next request.

    The caller re-stamps its own session (update_session_auth_hash) to stay signed in.
    """
    User.objects.filter(pk=user.pk).update(session_generation=F("session_generation") + 1)
    user.refresh_from_db(fields=["session_generation"])
    log_activity(actor=user, action=Action.SIGN_OUT, target="all other sessions")


def record_sign_in(user: User) -> None:
    log_activity(actor=user, action=Action.SIGN_IN, target=user.email)


def record_failed_sign_in(email: str) -> None:
    """Failed sign-ins are logged against the account they named, when it exists."""
    # The raw form input: PostgreSQL refuses NUL in text, which would turn a typo into a 500.
    email = "".join(ch for ch in email if ch.isprintable()).strip()
    user = User.objects.filter(email__iexact=email).select_related("enterprise").first()
    log_activity(actor=user, action=Action.SIGN_IN_FAILED, target=email[:254], actor_email=email)


def record_sign_out(user: User) -> None:
    log_activity(actor=user, action=Action.SIGN_OUT, target=user.email)


def record_password_reset(user: User) -> None:
    """Called inside the transaction that stores the new password (reset by email link)."""
    log_activity(actor=user, action=Action.PASSWORD_RESET, target=user.email)


def pending_totp_device(user: User) -> TOTPDevice:
    """The unconfirmed device being enrolled; the same secret across page reloads."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def has_confirmed_totp(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


@dataclass(frozen=True)
class OTPResult:
    device: TOTPDevice | BackupCodeDevice | None
    throttled_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.device is not None


def _check_locked(device: TOTPDevice | BackupCodeDevice, code: str) -> OTPResult:
    """Verify under a row lock, so two requests cannot both spend one code (replay race)."""
    device = type(device).objects.select_for_update().get(pk=device.pk)
    allowed, info = device.verify_is_allowed()
    if not allowed:
        return OTPResult(device=None, throttled_until=(info or {}).get("locked_until"))
    return OTPResult(device=device if device.verify_token(code) else None)


@transaction.atomic
def confirm_totp_device(*, user: User, code: str) -> OTPResult:
    """Confirm the pending device with a code from it; the caller then issues backup codes.

    Replacing a confirmed authenticator needs re-authentication first (authorise_mfa_change);
    the replacement is emailed to the user, since it is how an account would be taken over.
    """
    device = pending_totp_device(user)
    replacing = has_confirmed_totp(user)
    result = _check_locked(device, code)
    if not result.ok:
        log_activity(actor=user, action=Action.MFA_FAILED, target="enrolment")
        return result
    assert result.device is not None  # result.ok
    result.device.confirmed = True
    result.device.save(update_fields=["confirmed"])
    # One authenticator per account: an older confirmed one is replaced by the new one.
    TOTPDevice.objects.filter(user=user).exclude(pk=result.device.pk).delete()
    target = "authenticator replaced" if replacing else user.email
    log_activity(actor=user, action=Action.MFA_ENROLLED, target=target)
    if replacing:
        _email(user.email, "mfa/email_authenticator_replaced.txt", {"user": user})
    return result


@transaction.atomic
def authorise_mfa_change(*, user: User, password: str, code: str) -> str | None:
    """Re-authentication for replacing the authenticator or new backup codes.

    A verified session alone is not enough (it may be a borrowed laptop): the password and a
    current code (TOTP or backup) are both needed. Returns the reason for a refusal, or None.
    """
    if not user.check_password(password):
        log_activity(actor=user, action=Action.MFA_FAILED, target="re-authentication")
        return "That password is not correct."
    result = verify_second_factor(user=user, code=code)
    if not result.ok:
        return "That code is not valid. Enter a current code from your authenticator app."
    return None


@transaction.atomic
def verify_second_factor(*, user: User, code: str) -> OTPResult:
    """Check a TOTP code (6 digits) or a single-use backup code (anything else)."""
    devices: list[TOTPDevice | BackupCodeDevice]
    if code.isdigit() and len(code) == 6:
        devices = list(TOTPDevice.objects.filter(user=user, confirmed=True))
    else:
        devices = list(BackupCodeDevice.objects.filter(user=user, confirmed=True))
    result = OTPResult(device=None)
    for device in devices:
        result = _check_locked(device, code)
        if result.ok or result.throttled_until is not None:
            break
    if not result.ok:
        log_activity(actor=user, action=Action.MFA_FAILED, target="verification")
    elif isinstance(result.device, BackupCodeDevice):
        remaining = BackupCode.objects.filter(device=result.device).count()
        log_activity(actor=user, action=Action.BACKUP_CODE_USED, new={"remaining": remaining})
        # Someone holding a backup code can pass MFA: the owner hears about every use.
        ctx = {"user": user, "remaining": remaining}
        transaction.on_commit(lambda: _email(user.email, "mfa/email_backup_code_used.txt", ctx))
    else:
        log_activity(actor=user, action=Action.MFA_VERIFIED, target=user.email)
    return result


@transaction.atomic
def issue_backup_codes(*, user: User, regenerate: bool = False) -> list[str]:
    """Replace every backup code; the old ones stop working at once.

    Only salted hashes are stored: the returned plain codes must go straight into the one
    response that shows them, never into the session or a log.
    """
    device, _ = BackupCodeDevice.objects.get_or_create(
        user=user, defaults={"name": "Backup codes", "confirmed": True}
    )
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    device.set_codes(codes)
    if regenerate:
        log_activity(actor=user, action=Action.BACKUP_CODES_REGENERATED, target=user.email)
        _email(user.email, "mfa/email_backup_codes_regenerated.txt", {"user": user})
    return codes


def regenerate_backup_codes(*, user: User) -> list[str]:
    """New backup codes on request (after authorise_mfa_change): logged and emailed."""
    return issue_backup_codes(user=user, regenerate=True)


def backup_codes_left(user: User) -> int:
    return BackupCode.objects.filter(device__user=user, device__confirmed=True).count()
