"""Race proof over HTTP: concurrent Save Changes through the live server never over-assign.

Each round, ten admins' browsers (one session, ten connections) each ask for most of the
unassigned pool for a different user at the same instant. Exactly one can fit; the others
must get a clear refusal (409/422/400), never a 500, and nothing may hang (deadlock).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from django.utils.crypto import get_random_string

from accounts.models import User
from tests import factories
from tests.tokens.helpers import MIN, buy
from tokens.queries import pool_totals

pytestmark = [pytest.mark.postgres, pytest.mark.guarded]
REQUESTS = 10
ROUNDS = 20
HEADROOM = 1_000_000


def _post(url: str, cookies: str, csrf: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Cookie": cookies, "X-CSRFToken": csrf},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        try:
            return exc.code, json.loads(payload)
        except ValueError:
            return exc.code, {"raw": payload[:200].decode(errors="replace")}


def test_concurrent_saves_through_the_live_server_never_over_assign(live_server):
    enterprise = factories.make_enterprise("Acme Corp")
    members_total = REQUESTS * MIN
    buy(enterprise, MIN + members_total + HEADROOM)
    admin = factories.make_user(
        "admin@acme.test", enterprise=enterprise, role="admin", inference=MIN
    )
    members = [
        factories.make_user(f"m{i}@acme.test", enterprise=enterprise, inference=MIN)
        for i in range(REQUESTS)
    ]
    session = factories.verified_client(admin).cookies["sessionid"].value
    csrf = get_random_string(32)
    cookies = f"sessionid={session}; csrftoken={csrf}"
    url = f"{live_server.url}/org/users/allocations/"
    statuses: list[int] = []

    for round_no in range(ROUNDS):
        User.objects.filter(pk__in=[m.pk for m in members]).update(max_inference_tokens=MIN)
        free = pool_totals(enterprise).inference.unassigned
        assert free == HEADROOM
        ask = MIN + free * 8 // 10  # most of what is left: any two together do not fit
        barrier = threading.Barrier(REQUESTS)
        results: list = [None] * REQUESTS

        def run(i: int) -> None:
            body = {
                "column": "inference",
                "changes": [{"id": members[i].pk, "value": ask, "original": MIN}],
            }
            try:
                barrier.wait(timeout=10)
                results[i] = _post(url, cookies, csrf, body)
            except Exception as exc:  # a timeout or a reset: reported below
                results[i] = (0, {"exception": repr(exc)})

        threads = [threading.Thread(target=run, args=(i,)) for i in range(REQUESTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads), f"round {round_no}: a request hung"

        codes = [code for code, _ in results]
        statuses += codes
        assert codes.count(200) == 1, (round_no, results)
        for code, body in results:
            if code != 200:
                assert code in (400, 409, 422), (round_no, code, body)
                assert body["error"]["message"], body
        pools = pool_totals(enterprise).inference
        assert pools.assigned <= pools.purchased
        assert pools.assigned == MIN + members_total + (ask - MIN)

    assert len(statuses) == REQUESTS * ROUNDS and 500 not in statuses
