"""Users, enterprises and roles.

A user signs in with an email address, belongs to at most one enterprise, and holds
that enterprise's token allocation on their own row (the rules live in tokens.pool).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_otp.models import Device, ThrottlingMixin, TimestampMixin

from asksage_admin.core.validators import validate_single_line_name


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone (e.g. UTC, Europe/Paris).")


class EnterpriseQuerySet(models.QuerySet):
    def active(self) -> EnterpriseQuerySet:
        return self.filter(status=Enterprise.Status.ACTIVE)

    def lock(self, enterprise: Enterprise) -> Enterprise:
        """The enterprise row, re-read under SELECT ... FOR UPDATE.

        The one lock of the pool: every write to an enterprise's pool, users, roles or
        status takes it first, so checks see a pool no concurrent transaction is changing.
        Call it inside a transaction.
        """
        return self.select_for_update().get(pk=enterprise.pk)


class Enterprise(models.Model):
    """An organization that buys tokens in bulk; provisioned by sales staff."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    name = models.CharField(max_length=200, validators=[validate_single_line_name])
    slug = models.SlugField(max_length=60, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="Monthly inference usage resets on the 1st of each month in this time zone.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = EnterpriseQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "active", "suspended"]),
                name="enterprise_status_valid",
                violation_error_message="Unknown enterprise status.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class UserQuerySet(models.QuerySet):
    def in_enterprise(self, enterprise: Enterprise) -> UserQuerySet:
        return self.filter(enterprise=enterprise)

    def paid(self) -> UserQuerySet:
        return self.filter(status="paid")

    def admins(self) -> UserQuerySet:
        return self.filter(role="admin")


# The Django mypy plugin cannot build a from_queryset() base class in the AUTH_USER_MODEL's
# own module (it is analysed in one import cycle with django.contrib.auth): the base stays Any.
class UserManager(BaseUserManager.from_queryset(UserQuerySet)):  # type: ignore[misc]
    use_in_migrations = True

    def get_by_natural_key(self, username: str) -> User:
        # Emails are unique case-insensitively, so sign-in must not care about case either.
        return self.get(email__iexact=username)

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):  # type: ignore[django-manager-missing]  # django-otp devices are untyped
    """A registered person. Console access comes from `role` within `enterprise`."""

    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        ADMIN = "admin", "Admin"
        AUDITOR = "auditor", "Auditor"

    class Status(models.TextChoices):
        PAID = "paid", "Paid"
        BANNED = "banned", "Banned"

    email = models.EmailField(max_length=254, unique=True)
    full_name = models.CharField(max_length=150, blank=True, validators=[validate_single_line_name])
    enterprise = models.ForeignKey(
        Enterprise, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PAID)
    # Allocation: monthly inference cap and lifetime embedding/training cap.
    max_inference_tokens = models.BigIntegerField("Max Inference Tokens", default=0)
    max_embedding_tokens = models.BigIntegerField("Max Embedding Tokens", default=0)
    is_staff = models.BooleanField(default=False, help_text="May sign in to the staff admin.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # Self-registered accounts start False and sign in only after the emailed link; accounts
    # made by staff, seed data and every account older than this field count as confirmed.
    email_confirmed = models.BooleanField(default=True)
    # Part of the session hash: bumping it ends every session of the user ("sign out everywhere").
    session_generation = models.PositiveIntegerField(default=0, editable=False)

    objects = UserManager()
    # Bound per request by django_otp's OTPMiddleware: True once the second factor is proven.
    is_verified: Callable[[], bool]

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="user_email_ci_unique",
                violation_error_message="A user with this email address already exists.",
            ),
            models.CheckConstraint(
                condition=models.Q(max_inference_tokens__gte=0, max_embedding_tokens__gte=0),
                name="user_allocation_non_negative",
                violation_error_message="Allocations are whole, non-negative numbers.",
            ),
            models.CheckConstraint(
                condition=models.Q(role="member") | models.Q(enterprise__isnull=False),
                name="user_console_role_needs_enterprise",
                violation_error_message=(
                    "Only a member of an enterprise can be its admin or auditor."
                ),
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=["member", "admin", "auditor"]),
                name="user_role_valid",
                violation_error_message="Unknown role.",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["paid", "banned"]),
                name="user_status_valid",
                violation_error_message="Unknown status.",
            ),
        ]
        indexes = [
            # Users table: WHERE enterprise_id = ? ORDER BY email (the default sort).
            models.Index(fields=["enterprise", "email"], name="user_enterprise_email_idx"),
            # Users table sorted by another column (ties broken by email), first or last page
            # read straight from the index (metrics/pagination.py): ORDER BY <col>, email.
            models.Index(
                fields=["enterprise", "max_inference_tokens", "email"], name="user_ent_maxinf_idx"
            ),
            models.Index(
                fields=["enterprise", "max_embedding_tokens", "email"], name="user_ent_maxemb_idx"
            ),
            models.Index(fields=["enterprise", "role", "email"], name="user_ent_role_idx"),
            models.Index(fields=["enterprise", "status", "email"], name="user_ent_status_idx"),
        ]

    def __str__(self) -> str:
        return self.email

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    def get_session_auth_hash(self) -> str:
        """Django checks this on every request: a new generation invalidates old sessions."""
        return salted_hmac(
            "accounts.User.get_session_auth_hash",
            f"{self.password}:{self.session_generation}",
            algorithm="sha256",
        ).hexdigest()

    @property
    def is_banned(self) -> bool:
        return self.status == self.Status.BANNED

    @property
    def status_label(self) -> str:
        """The console's name for the status: "Banned (disabled)" pairs it with the verb."""
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def is_console_role(self) -> bool:
        return self.enterprise_id is not None and self.role in (self.Role.ADMIN, self.Role.AUDITOR)

    @property
    def needs_mfa(self) -> bool:
        """Admins, auditors and staff may not reach anything before TOTP verification."""
        return self.is_staff or self.is_superuser or self.is_console_role

    @property
    def can_edit_console(self) -> bool:
        return self.enterprise_id is not None and self.role == self.Role.ADMIN


class BackupCodeHasher(PBKDF2PasswordHasher):
    """Password-style PBKDF2 for backup codes, lighter than for passwords: a code carries 50
    random bits (not a human choice) and verification may try each of a user's ten hashes."""

    iterations = 60_000


_BACKUP_HASHER = BackupCodeHasher()


class BackupCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """Single-use backup codes kept only as salted hashes (a django-otp device).

    The plain codes exist once, in the response that shows them; a used code is deleted.
    Failures are throttled like TOTP (exponential back-off on this row).
    """

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_STATIC_THROTTLE_FACTOR", 1)

    def set_codes(self, codes: list[str]) -> None:
        self.codes.all().delete()
        BackupCode.objects.bulk_create(
            BackupCode(device=self, code_hash=hash_backup_code(code)) for code in codes
        )

    def verify_token(self, token: str) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        token = normalise_backup_code(token)
        match = next(
            (c for c in self.codes.all() if _BACKUP_HASHER.verify(token, c.code_hash)), None
        )
        if match is None:
            self.throttle_increment()
            return False
        match.delete()
        self.throttle_reset(commit=False)
        self.set_last_used_timestamp(commit=False)
        self.save()
        return True


class BackupCode(models.Model):
    """One unused backup code, as a PBKDF2 hash with its own salt."""

    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=128)

    def __str__(self) -> str:
        return f"Backup code #{self.pk}"


def normalise_backup_code(code: str) -> str:
    return "".join(str(code).split()).lower()


def hash_backup_code(code: str) -> str:
    return _BACKUP_HASHER.encode(normalise_backup_code(code), _BACKUP_HASHER.salt())


# The console's one pairing of the stored status with the "Disable"/"Activate" buttons: the
# badge, the table filter and messages all say "Banned (disabled)". CSV exports keep the
# stored word.
STATUS_LABELS: dict[str, str] = {"paid": "Paid", "banned": "Banned (disabled)"}
