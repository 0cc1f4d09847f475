"""Helpers for the usage API tests: an integration key and a client that posts JSON with it."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Sum
from django.test import Client

from accounts.models import User
from metrics import keys
from metrics.models import IntegrationKey, MonthlyUsage, UsageEvent, UsageTotal

EVENTS_URL = "/api/v1/usage/events"
QUOTA_URL = "/api/v1/quota/check"


def make_key(name: str = "Chat service") -> tuple[IntegrationKey, str]:
    return keys.create_integration_key(actor=None, name=name)


def make_users(enterprise, count: int, *, prefix: str = "u", **fields: Any) -> list[User]:
    """Many users at once, without password hashing (they never sign in)."""
    return User.objects.bulk_create(
        User(email=f"{prefix}{n}@bulk.test", enterprise=enterprise, password="!", **fields)
        for n in range(count)
    )


def event(
    event_id: str,
    user: str,
    *,
    kind: str = "inference",
    tokens: int = 100,
    occurred_at: str = "2026-01-15T12:00:00Z",
    model: str = "gpt-4o",
) -> dict[str, Any]:
    return {
        "id": event_id,
        "user": user,
        "kind": kind,
        "tokens": tokens,
        "occurred_at": occurred_at,
        "model": model,
    }


class Api:
    """A test client that authenticates with one integration key."""

    def __init__(self, plaintext: str) -> None:
        self.client = Client()
        self.plaintext = plaintext

    def post(self, url: str, payload: Any, **extra: Any):
        extra.setdefault("HTTP_AUTHORIZATION", f"Bearer {self.plaintext}")
        body = payload if isinstance(payload, bytes) else json.dumps(payload)
        return self.client.post(url, body, content_type="application/json", **extra)

    def events(self, events: list[dict[str, Any]]):
        return self.post(EVENTS_URL, {"events": events})

    def quota(self, user: str, kind: str = "inference", tokens: int = 1):
        return self.post(QUOTA_URL, {"user": user, "kind": kind, "tokens": tokens})


def statuses(response) -> list[str]:
    return [r["status"] for r in response.json()["results"]]


def ledger_sum(user: User, kind: str = "inference") -> int:
    return UsageEvent.objects.filter(user=user, kind=kind).aggregate(t=Sum("tokens", default=0))[
        "t"
    ]


def month_inference(user: User, month) -> int:
    row = MonthlyUsage.objects.filter(user=user, month=month).first()
    return row.inference_tokens if row else 0


def lifetime(user: User) -> tuple[int, int]:
    row = UsageTotal.objects.filter(user=user).first()
    return (row.inference_tokens, row.embedding_tokens) if row else (0, 0)
