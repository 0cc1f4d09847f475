"""Concurrent ingestion on PostgreSQL: idempotency under races, no lost updates, no deadlock."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import Sum

from metrics import keys
from metrics.models import MonthlyUsage, UsageEvent, UsageEventKey, UsageTotal
from tests.concurrency import run_together, succeeded
from tests.metrics.usage_helpers import Api, event, make_key, make_users

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 8


def in_threads(work: Callable[[int], Any], threads: int = THREADS) -> list[Any]:
    """work(0..n-1) on n threads released together; fails on any exception."""
    return succeeded(run_together([functools.partial(work, n) for n in range(threads)]))


def test_same_id_sent_from_many_threads_is_counted_once(member):
    _key, plaintext = make_key()
    for round_ in range(5):
        responses = in_threads(
            lambda n, r=round_: Api(plaintext).events(
                [event(f"same-{r}", member.email, tokens=777)]
            )
        )

        assert [r.status_code for r in responses] == [200] * THREADS
        results = sorted(r.json()["results"][0]["status"] for r in responses)
        assert results == ["duplicate"] * (THREADS - 1) + ["recorded"]
    assert UsageEvent.objects.count() == 5
    assert MonthlyUsage.objects.get(user=member).inference_tokens == 5 * 777
    assert UsageTotal.objects.get(user=member).inference_tokens == 5 * 777


def test_same_id_with_different_content_races_to_one_winner(member):
    _key, plaintext = make_key()

    responses = in_threads(
        lambda n: Api(plaintext).events([event("contested", member.email, tokens=100 + n)])
    )

    outcomes = sorted(r.json()["results"][0].get("code", "recorded") for r in responses)
    assert outcomes == ["conflict"] * (THREADS - 1) + ["recorded"]
    stored = UsageEvent.objects.get()
    assert UsageTotal.objects.get(user=member).inference_tokens == stored.tokens


def test_same_id_claiming_different_months_races_to_one_event(member):
    """Each thread's copy lands in another month's partition: the key table still lets
    exactly one through."""
    _key, plaintext = make_key()

    responses = in_threads(
        lambda n: Api(plaintext).events(
            [event("roaming", member.email, occurred_at=f"2026-{n + 1:02d}-10T12:00:00Z")]
        )
    )

    outcomes = sorted(r.json()["results"][0].get("code", "recorded") for r in responses)
    assert outcomes == ["conflict"] * (THREADS - 1) + ["recorded"]
    stored = UsageEvent.objects.get()
    assert UsageEventKey.objects.get().month == stored.month
    assert list(MonthlyUsage.objects.filter(user=member).values_list("month", flat=True)) == [
        stored.month
    ]
    assert UsageTotal.objects.get(user=member).inference_tokens == stored.tokens


def test_overlapping_batches_neither_deadlock_nor_lose_tokens(enterprise):
    users = make_users(enterprise, 12)
    _key, plaintext = make_key()
    months = ["2026-01-10T10:00:00Z", "2026-02-10T10:00:00Z", "2026-03-10T10:00:00Z"]
    # Every thread reports the same shared events (in its own shuffled order) and its own.
    shared = [
        event(f"shared-{i}", users[i % 12].email, tokens=i + 1, occurred_at=months[i % 3])
        for i in range(300)
    ]

    def work(n: int) -> tuple[list[int], set[str]]:
        rng = random.Random(n)
        api = Api(plaintext)
        codes, sent = [], set()
        for batch in range(4):
            own = [
                event(
                    f"t{n}-b{batch}-{i}",
                    users[rng.randrange(12)].email,
                    tokens=rng.randint(1, 1000),
                    kind=rng.choice(["inference", "embedding"]),
                    occurred_at=rng.choice(months),
                    model=rng.choice(["a", "b", "c"]),
                )
                for i in range(150)
            ]
            picked = rng.sample(shared, 100)
            sent |= {e["id"] for e in picked}
            mixed = own + picked
            rng.shuffle(mixed)
            codes.append(api.events(mixed).status_code)
        return codes, sent

    outcomes = in_threads(work)

    assert [codes for codes, _sent in outcomes] == [[200] * 4] * THREADS
    shared_sent = set().union(*(sent for _codes, sent in outcomes))
    assert UsageEvent.objects.count() == THREADS * 4 * 150 + len(shared_sent)
    ledger = UsageEvent.objects.aggregate(t=Sum("tokens"))["t"]
    rolled = UsageTotal.objects.aggregate(i=Sum("inference_tokens"), e=Sum("embedding_tokens"))
    assert rolled["i"] + rolled["e"] == ledger
    call_command("reconcile_usage", stdout=StringIO())


def test_concurrent_batches_flag_exactly_the_events_past_the_cap(enterprise):
    user = make_users(enterprise, 1, max_inference_tokens=1000)[0]
    _key, plaintext = make_key()

    responses = in_threads(
        lambda n: Api(plaintext).events(
            [event(f"t{n}-a", user.email, tokens=300), event(f"t{n}-b", user.email, tokens=300)]
        )
    )

    # In commit order the totals run 300, 600 | 900, 1200 | 1500, ...: one batch is under
    # the cap, one crosses it on its second event, every later one is over from the start.
    flags = sorted([r["overage"] for r in resp.json()["results"]] for resp in responses)
    assert flags == [[False, False], [False, True]] + [[True, True]] * (THREADS - 2)
    assert MonthlyUsage.objects.get(user=user).inference_tokens == THREADS * 600


def test_same_id_sent_at_once_with_both_keys_of_an_integration_is_counted_once(member):
    _old, old_plaintext = make_key("Chat service")
    _new, new_plaintext = keys.create_integration_key(actor=None, name="Chat service", rotate=True)
    plaintexts = [old_plaintext, new_plaintext]

    responses = in_threads(
        lambda n: Api(plaintexts[n % 2]).events([event("rotated", member.email, tokens=300)])
    )

    results = sorted(r.json()["results"][0]["status"] for r in responses)
    assert results == ["duplicate"] * (THREADS - 1) + ["recorded"]
    assert UsageTotal.objects.get(user=member).inference_tokens == 300
