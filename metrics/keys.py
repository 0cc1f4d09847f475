"""Integration keys: created and revoked by operators, shown once, stored as a digest.

The key-use log ("API key used", about hourly per enterprise) lives here too, because
ingestion and quota checks both report it. Both are decided in process memory most of the
time, so an API request costs no query for its key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from accounts.models import Enterprise, User
from asksage_admin.core.audit import log_activity
from asksage_admin.core.models import ActivityLog
from metrics.models import Integration, IntegrationKey

KEY_PREFIX = "ask_"
# last_used_at is a "recently used" hint, not a counter: writing it on every request would
# turn each API call into an extra UPDATE on one hot row.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# "API key used" rows: at most one per key and enterprise per hour, so the log records
# that an integration reports for an enterprise without growing with every request.
KEY_USE_LOG_INTERVAL = timedelta(hours=1)


def _key_digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).hexdigest()


NAME_MAX_LENGTH = 100  # Integration.name's max_length


@transaction.atomic
def create_integration_key(
    *, actor: User | None, name: str, rotate: bool = False
) -> tuple[IntegrationKey, str]:
    """A key for the integration `name`, created with it when new; the plaintext is
    returned once and never stored. An existing name needs `rotate` (a second live key
    while the old one is phased out), so a typo cannot hand a service another's ids."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "An integration needs a name."})
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError({"name": "An integration name is at most 100 characters."})
    integration = Integration.objects.filter(name=name).first()
    if integration is not None and not rotate:
        raise ValidationError(
            {"name": f"An integration named {name!r} already exists; rotate to add a key."}
        )
    if integration is None:
        if rotate:
            raise ValidationError({"name": f"No integration is named {name!r}."})
        integration = Integration.objects.create(name=name, created_by=_recorded(actor))
    return issue_key(actor=actor, integration=integration)


@transaction.atomic
def issue_key(*, actor: User | None, integration: Integration) -> tuple[IntegrationKey, str]:
    """A new live key for an existing integration; its other keys stay live until revoked."""
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = IntegrationKey.objects.create(
        integration=integration,
        prefix=plaintext[: IntegrationKey._meta.get_field("prefix").max_length],
        digest=_key_digest(plaintext),
        created_by=_recorded(actor),
    )
    log_activity(
        actor=actor,
        action=ActivityLog.Action.API_KEY_CREATED,
        target=str(key),
        new={"integration": integration.name, "prefix": key.prefix},
        actor_email="" if actor else "command line",
    )
    return key, plaintext


def _recorded(actor: User | None) -> User | None:
    return actor if actor is not None and actor.pk else None


@transaction.atomic
def revoke_integration_key(*, actor: User | None, key: IntegrationKey) -> bool:
    """Revoke a key for good; False when it was already revoked (nothing logged)."""
    # Lock so two staff clicking Revoke at once write one log row, not two.
    locked = (
        IntegrationKey.objects.select_for_update(of=("self",))
        .select_related("integration")
        .get(pk=key.pk)
    )
    if locked.revoked_at is not None:
        key.revoked_at = locked.revoked_at
        return False
    locked.revoked_at = key.revoked_at = timezone.now()
    locked.save(update_fields=["revoked_at"])
    # Other processes notice within KEY_CACHE_SECONDS; this one at once.
    _key_cache.pop(locked.digest, None)
    log_activity(
        actor=actor,
        action=ActivityLog.Action.API_KEY_REVOKED,
        target=str(locked),
        old={"revoked": False},
        new={"revoked": True},
        actor_email="" if actor else "command line",
    )
    return True


# Keys are looked up in process memory for a few seconds: a revoked key stops working
# within KEY_CACHE_SECONDS everywhere (at once in the process that revoked it), and an
# integration's requests cost no key query in between.
KEY_CACHE_SECONDS = 5.0
KEY_CACHE_SIZE = 1000
_key_cache: dict[str, tuple[float, IntegrationKey | None]] = {}
# (key id, enterprise id) -> when this process last knew an "API key used" row was written.
_key_use_seen: dict[tuple[int, int], float] = {}


def _clock() -> float:
    return time.monotonic()


def forget_cached_keys() -> None:
    """Drop what this process remembers about keys (tests start from a clean slate)."""
    _key_cache.clear()
    _key_use_seen.clear()


def authenticate_key(plaintext: str) -> IntegrationKey | None:
    """The active key with this plaintext, or None (unknown, malformed or revoked)."""
    if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 200:
        return None
    digest = _key_digest(plaintext)
    now = _clock()
    cached = _key_cache.get(digest)
    if cached is None or now - cached[0] >= KEY_CACHE_SECONDS:
        key = IntegrationKey.objects.select_related("integration").filter(digest=digest).first()
        if key is None:
            return None  # unknown keys are not cached: the cache holds only real keys
        if len(_key_cache) >= KEY_CACHE_SIZE:
            _key_cache.clear()
        cached = _key_cache[digest] = (now, key if key.is_active else None)
    key = cached[1]
    # The lookup is by digest; compare_digest keeps the final check constant-time anyway.
    if key is None or not hmac.compare_digest(key.digest, digest):
        return None
    _touch(key)
    return key


def _touch(key: IntegrationKey) -> None:
    """last_used_at, at most once per LAST_USED_RESOLUTION per process."""
    now = timezone.now()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    IntegrationKey.objects.filter(stale, pk=key.pk).update(last_used_at=now)
    key.last_used_at = now


def log_key_use(key: IntegrationKey, enterprise_ids: set[int], **new: Any) -> None:
    """One "API key used" row per enterprise per KEY_USE_LOG_INTERVAL.

    Each process remembers when it last saw the row written, so a busy integration costs
    no query here; only when that memory is older than the interval does it look at the
    log (activity_action_time_idx) and write what is missing. Several processes, or two
    concurrent batches, may each write one: "about once an hour" is all the log needs.
    """
    interval = KEY_USE_LOG_INTERVAL.total_seconds()
    clock = _clock()
    due = {
        e for e in enterprise_ids if clock - _key_use_seen.get((key.pk, e), -interval) >= interval
    }
    if not due:
        return
    now = timezone.now()
    target = str(key)
    logged = dict(
        ActivityLog.objects.filter(
            enterprise_id__in=due,
            action=ActivityLog.Action.API_KEY_USED,
            created_at__gte=now - KEY_USE_LOG_INTERVAL,
            target=target,
        )
        .values("enterprise_id")
        .annotate(last=Max("created_at"))
        .values_list("enterprise_id", "last")
    )
    for enterprise_id in sorted(due - logged.keys()):
        log_activity(
            actor=None,
            actor_email=f"API key {key.name}"[:254],
            action=ActivityLog.Action.API_KEY_USED,
            enterprise=Enterprise(pk=enterprise_id),
            target=target,
            new=new or None,
        )
    if len(_key_use_seen) > KEY_CACHE_SIZE * 100:
        _key_use_seen.clear()  # a bound, not a policy: forgetting costs one query each
    for enterprise_id in due:
        age = (now - logged[enterprise_id]).total_seconds() if enterprise_id in logged else 0.0
        _key_use_seen[(key.pk, enterprise_id)] = clock - age
