"""Write rules for accounts: registration, sign-in records and the MFA steps.

Each function takes the acting user, runs in one transaction and writes its own
activity-log row (asksage_admin.core.audit.log_activity).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from asksage_admin.core.audit import Action, log_activity

BACKUP_CODE_COUNT = 10


@transaction.atomic
def register_user(*, email: str, password: str, full_name: str = "") -> User:
    """Create a self-registered account (a member of no enterprise yet)."""
    user = User.objects.create_user(email=email, password=password, full_name=full_name)
    log_activity(actor=user, action=Action.REGISTERED, target=user.email)
    return user


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
    device: TOTPDevice | StaticDevice | None
    throttled_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.device is not None


def _check_locked(device: TOTPDevice | StaticDevice, code: str) -> OTPResult:
    """Verify under a row lock, so two requests cannot both spend one code (replay race)."""
    device = type(device).objects.select_for_update().get(pk=device.pk)
    allowed, info = device.verify_is_allowed()
    if not allowed:
        return OTPResult(device=None, throttled_until=(info or {}).get("locked_until"))
    return OTPResult(device=device if device.verify_token(code) else None)


@transaction.atomic
def confirm_totp_device(*, user: User, code: str) -> tuple[OTPResult, list[str]]:
    """Confirm the pending device with a code from it; on success issue fresh backup codes."""
    device = pending_totp_device(user)
    result = _check_locked(device, code)
    if not result.ok:
        log_activity(actor=user, action=Action.MFA_FAILED, target="enrolment")
        return result, []
    assert result.device is not None  # result.ok
    result.device.confirmed = True
    result.device.save(update_fields=["confirmed"])
    # One authenticator per account: an older confirmed one is replaced by the new one.
    TOTPDevice.objects.filter(user=user).exclude(pk=result.device.pk).delete()
    codes = _issue_backup_codes(user)
    log_activity(actor=user, action=Action.MFA_ENROLLED, target=user.email)
    return result, codes


@transaction.atomic
def verify_second_factor(*, user: User, code: str) -> OTPResult:
    """Check a TOTP code (6 digits) or a single-use backup code (anything else)."""
    if code.isdigit() and len(code) == 6:
        devices = list(TOTPDevice.objects.filter(user=user, confirmed=True))
    else:
        devices = list(StaticDevice.objects.filter(user=user, confirmed=True))
    result = OTPResult(device=None)
    for device in devices:
        result = _check_locked(device, code)
        if result.ok:
            break
    if not result.ok:
        log_activity(actor=user, action=Action.MFA_FAILED, target="verification")
    elif isinstance(result.device, StaticDevice):
        remaining = StaticToken.objects.filter(device=result.device).count()
        log_activity(actor=user, action=Action.BACKUP_CODE_USED, new={"remaining": remaining})
    else:
        log_activity(actor=user, action=Action.MFA_VERIFIED, target=user.email)
    return result


def _issue_backup_codes(user: User) -> list[str]:
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name="Backup codes", defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


@transaction.atomic
def regenerate_backup_codes(*, user: User) -> list[str]:
    """Replace every backup code; the old ones stop working at once."""
    codes = _issue_backup_codes(user)
    log_activity(actor=user, action=Action.BACKUP_CODES_REGENERATED, target=user.email)
    return codes


def backup_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()
