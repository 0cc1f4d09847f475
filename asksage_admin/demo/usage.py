"""Demo usage for seed_demo: two years of plausible events, sent through record_usage_batch.

Going through the ingestion service (not straight into the roll-ups) means the demo
reconciles like real data. Deterministic and idempotent: every event's id and content come
from a seeded random stream per user and month, so a re-run reports the same events again
and they come back as duplicates, not new usage.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.models import Enterprise, User
from metrics.ingest import record_usage_batch
from metrics.keys import create_integration_key
from metrics.models import Integration, IntegrationKey
from metrics.quota import next_month, usage_month

DEMO_KEY_NAME = "Demo platform"
INFERENCE_MODELS = ("gpt-4o", "claude-3-5-sonnet", "llama-3-70b")
INFERENCE_WEIGHTS = (45, 35, 20)
EMBEDDING_MODEL = "text-embedding-3-large"
# Holidays: usage dips in August and December.
SEASONAL = {8: 0.55, 12: 0.7}
SPIKE_FACTOR = 2.4
# The spike sits this many months before the enterprise's creation month: inside the
# 24-month window, with enough history before it to stand out.
SPIKE_MONTHS_BACK = 6


@dataclass(frozen=True)
class DemoUsage:
    recorded: int
    duplicate: int
    rejected: int
    first_month: date
    last_month: date


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def _month_factor(month: date, anchor: date, months: int) -> float:
    """Adoption grows over the window, dips in the holidays, spikes once.

    Relative to the enterprise's creation month (fixed), not to today, so a month's events
    are the same whenever the demo is re-run.
    """
    age = (month.year - anchor.year) * 12 + month.month - anchor.month + months - 1
    growth = min(1.15, 0.35 + 0.65 * age / max(1, months - 1))
    spike = SPIKE_FACTOR if month == _add_months(anchor, -SPIKE_MONTHS_BACK) else 1.0
    return growth * SEASONAL.get(month.month, 1.0) * spike


def _user_month_events(
    user: User, month: date, factor: float, tz: Any, seed: int, now: datetime
) -> list[dict[str, Any]]:
    person = random.Random(f"{seed}:{user.email}")
    base = person.randint(60_000, 190_000) * (1.8 if person.random() < 0.2 else 1.0)
    rng = random.Random(f"{seed}:{user.email}:{month:%Y-%m}")
    inference_total = int(base * factor * rng.uniform(0.8, 1.2))
    kinds = ["inference"] * rng.randint(4, 8) + ["embedding"] * rng.randint(0, 2)
    weights = [rng.uniform(0.5, 1.5) for _ in kinds]
    inference_weight = sum(w for w, k in zip(weights, kinds, strict=True) if k == "inference")
    days = (next_month(month) - month).days
    events = []
    for n, (kind, weight) in enumerate(zip(kinds, weights, strict=True)):
        local = datetime.combine(
            month + timedelta(days=rng.randrange(days)),
            time(rng.randint(7, 19), rng.randrange(60), rng.randrange(60)),
            tzinfo=tz,
        )
        if kind == "inference":
            tokens = max(1, int(inference_total * weight / inference_weight))
            model = rng.choices(INFERENCE_MODELS, INFERENCE_WEIGHTS)[0]
        else:
            tokens = int(rng.uniform(2_000, 30_000) * factor) + 1
            model = EMBEDDING_MODEL
        if local > now:
            continue  # the current month only has what has happened so far
        events.append(
            {
                "id": f"demo:{user.email}:{month:%Y-%m}:{n}",
                "user": user.email,
                "kind": kind,
                "tokens": tokens,
                "occurred_at": local.isoformat(),
                "model": model,
            }
        )
    return events


def demo_integration_key() -> IntegrationKey:
    key = IntegrationKey.objects.active().filter(integration__name=DEMO_KEY_NAME).first()
    if key is None:
        exists = Integration.objects.filter(name=DEMO_KEY_NAME).exists()
        key, _plaintext = create_integration_key(actor=None, name=DEMO_KEY_NAME, rotate=exists)
    return key


def generate_demo_usage(
    enterprise: Enterprise, months: int = 24, *, seed: int = 2024, now: datetime | None = None
) -> DemoUsage:
    """Report `months` months of usage (ending now) for every user of `enterprise`."""
    now = now or timezone.now()
    tz = enterprise.tzinfo
    last = usage_month(now, tz)
    first = _add_months(last, -(months - 1))
    anchor = usage_month(enterprise.created_at, tz)
    users = list(User.objects.in_enterprise(enterprise).order_by("email"))
    events: list[dict[str, Any]] = []
    for offset in range(months):
        month = _add_months(first, offset)
        factor = _month_factor(month, anchor, months)
        for user in users:
            events += _user_month_events(user, month, factor, tz, seed, now)
    key = demo_integration_key()
    size = settings.USAGE_MAX_EVENTS_PER_BATCH
    counts: Counter[str] = Counter()
    for start in range(0, len(events), size):
        batch = events[start : start + size]
        counts.update(r.status for r in record_usage_batch(integration=key, events=batch))
    return DemoUsage(
        recorded=counts["recorded"],
        duplicate=counts["duplicate"],
        rejected=counts["rejected"],
        first_month=first,
        last_month=last,
    )
