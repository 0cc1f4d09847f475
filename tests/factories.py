"""Plain factory functions for tests: explicit arguments, no magic."""

from __future__ import annotations

import itertools
import time

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Enterprise, User
from accounts.stepup import VERIFIED_AT_KEY

PASSWORD = "Correct-Horse-Battery-9"
_seq = itertools.count(1)


def make_enterprise(
    name: str | None = None, *, status: str = Enterprise.Status.ACTIVE, time_zone: str = "UTC"
) -> Enterprise:
    n = next(_seq)
    name = name or f"Enterprise {n}"
    return Enterprise.objects.create(
        name=name, slug=f"{name.lower().replace(' ', '-')}-{n}", status=status, time_zone=time_zone
    )


def make_user(
    email: str | None = None,
    *,
    enterprise: Enterprise | None = None,
    role: str = User.Role.MEMBER,
    status: str = User.Status.PAID,
    password: str = PASSWORD,
    inference: int = 0,
    embedding: int = 0,
    is_staff: bool = False,
    is_superuser: bool = False,
) -> User:
    email = email or f"user{next(_seq)}@example.com"
    return User.objects.create_user(
        email=email,
        password=password,
        enterprise=enterprise,
        role=role,
        status=status,
        max_inference_tokens=inference,
        max_embedding_tokens=embedding,
        is_staff=is_staff,
        is_superuser=is_superuser,
    )


def make_totp_device(user: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def totp_code(device: TOTPDevice, *, at: float | None = None) -> str:
    """The code the user's authenticator app shows now (or at Unix time `at`)."""
    generator = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    generator.time = time.time() if at is None else at
    return f"{generator.token():0{device.digits}d}"


def verified_client(user: User) -> Client:
    """A client signed in as `user` with an OTP-verified session (MFA done)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or make_totp_device(user)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[VERIFIED_AT_KEY] = time.time()  # the code was just entered: no step-up needed yet
    session.save()
    return client


def signed_in_client(user: User) -> Client:
    """A client signed in with the password only (no MFA step done)."""
    client = Client()
    client.force_login(user)
    return client
