"""Faults on real PostgreSQL: the app's connection killed mid-transaction, deadlocks, and
guard refusals at commit. Nothing of a failed transaction persists, the answer is a clear
409/422/503 (never a 500), and the next request succeeds without a restart."""

from __future__ import annotations

import io
import json
import threading
from contextlib import contextmanager

import psycopg
import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, connections

from accounts.models import User
from asksage_admin.core.models import ActivityChainHead, ActivityLog
from asksage_admin.core.retry import ATTEMPTS
from metrics.models import UsageEvent
from tests import factories
from tests.metrics.usage_helpers import Api, event, make_key
from tests.tokens.helpers import MIN, buy

pytestmark = [pytest.mark.postgres, pytest.mark.guarded, pytest.mark.django_db(transaction=True)]
SAVE_URL = "/org/users/allocations/"
EVENTS_URL = "/api/v1/usage/events"


@pytest.fixture
def acme():
    """Active, 3,000,000 inference bought, an admin and four members at the minimum."""
    enterprise = factories.make_enterprise("Acme Corp")
    buy(enterprise, 3_000_000, 500_000)
    admin = factories.make_user(
        "admin@acme.test", enterprise=enterprise, role="admin", inference=MIN
    )
    members = [
        factories.make_user(f"m{i}@acme.test", enterprise=enterprise, inference=MIN)
        for i in range(4)
    ]
    return enterprise, admin, members


def _save(client, members, value: int, column: str = "inference"):
    body = {
        "column": column,
        "changes": [{"id": m.pk, "value": value, "original": MIN} for m in members],
    }
    return client.post(SAVE_URL, json.dumps(body), content_type="application/json")


def _allocations(members) -> list[int]:
    return list(
        User.objects.filter(pk__in=[m.pk for m in members])
        .order_by("pk")
        .values_list("max_inference_tokens", flat=True)
    )


def _chain_verifies() -> None:
    call_command("verify_activity_log", by="fault-test", stdout=io.StringIO())


def _head_seq() -> int:
    return ActivityChainHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0


def _deadlock(*args, **kwargs):
    raise OperationalError("deadlock detected") from psycopg.errors.DeadlockDetected(
        "deadlock detected"
    )


def _kill_own_backend() -> None:
    """pg_terminate_backend of the app's connection, from another connection."""
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    with psycopg.connect(**params, autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", [pid])


@contextmanager
def kill_after(statement_start: str):
    """Kill the app's connection right after the first statement starting with that text."""
    fired = []

    def wrapper(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not fired and sql.lstrip().upper().startswith(statement_start.upper()):
            fired.append(sql)
            _kill_own_backend()
        return result

    with connection.execute_wrapper(wrapper):
        yield fired


# --- guard refusals reach the person as the service's message ----------------------------


def test_a_save_that_gets_past_the_service_checks_is_refused_by_postgres(acme, monkeypatch):
    enterprise, admin, members = acme
    client = factories.verified_client(admin)
    monkeypatch.setattr("tokens.pool._check_changes", lambda *a, **k: None)
    before = ActivityLog.objects.count()
    response = _save(client, members[:2], 2_000_000)  # 4,400,000 > 3,000,000
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "over_pool"
    assert error["message"].startswith("Max Inference Tokens: these changes would assign")
    assert _allocations(members) == [MIN] * 4
    assert ActivityLog.objects.count() == before  # no orphan log rows
    _chain_verifies()


def test_lowering_a_paid_user_past_the_service_is_refused_with_the_row_named(acme, monkeypatch):
    enterprise, admin, members = acme
    client = factories.verified_client(admin)
    monkeypatch.setattr("tokens.pool._check_changes", lambda *a, **k: None)
    response = _save(client, members[:1], 1_000)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "minimum"
    assert "needs at least 200,000" in error["message"]
    assert str(members[0].pk) in error["rows"]
    assert _allocations(members) == [MIN] * 4


# --- deadlocks: retried, then 503 ---------------------------------------------------------


def test_a_deadlock_is_retried_and_the_save_lands_once(acme, monkeypatch):
    enterprise, admin, members = acme
    client = factories.verified_client(admin)
    from tokens import pool

    real, calls = pool._check_changes, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            _deadlock()
        return real(*args, **kwargs)

    monkeypatch.setattr("tokens.pool._check_changes", flaky)
    response = _save(client, members[:2], 300_000)
    assert response.status_code == 200, response.content
    assert len(calls) == 2
    assert _allocations(members) == [300_000, 300_000, MIN, MIN]
    assert ActivityLog.objects.filter(action="allocation_changed").count() == 2
    _chain_verifies()


def test_a_deadlock_that_persists_is_answered_503_with_retry_after(acme, monkeypatch):
    enterprise, admin, members = acme
    client = factories.verified_client(admin)
    calls = []

    def always(*args, **kwargs):
        calls.append(1)
        _deadlock()

    monkeypatch.setattr("tokens.pool._check_changes", always)
    response = _save(client, members[:2], 300_000)
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "unavailable"
    assert len(calls) == ATTEMPTS
    assert _allocations(members) == [MIN] * 4


def test_a_deadlock_in_a_console_form_is_a_friendly_503_page(acme, monkeypatch):
    enterprise, admin, members = acme
    client = factories.verified_client(admin)
    monkeypatch.setattr("tokens.membership.disable_user", _deadlock)
    response = client.post(f"/org/users/{members[0].pk}/status/", {"action": "disable"})
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "Please try again" in response.content.decode()
    assert "Nothing was saved" in response.content.decode()


# --- the connection killed mid-transaction ----------------------------------------------


def test_connection_killed_in_the_middle_of_a_multi_row_save(acme):
    enterprise, admin, members = acme
    client = factories.verified_client(admin)
    head = _head_seq()
    logs = ActivityLog.objects.count()
    with kill_after('UPDATE "accounts_user"') as fired:
        response = _save(client, members, 400_000)
    assert fired, "the save never reached its UPDATE"
    assert response.status_code == 503
    assert response["Retry-After"]
    # Nothing of the transaction persists: allocations, log rows, the chain head.
    assert _allocations(members) == [MIN] * 4
    assert ActivityLog.objects.count() == logs
    assert _head_seq() == head
    _chain_verifies()
    # The next request succeeds on a new connection, no restart.
    again = _save(client, members, 400_000)
    assert again.status_code == 200, again.content
    assert _allocations(members) == [400_000] * 4
    _chain_verifies()


@contextmanager
def kill_while_running(marker: str):
    """Kill the app's connection while a statement containing `marker` is executing.

    A poller on its own connection terminates the backend only while it is `active`, so a
    statement that finished first is never hit afterwards (the test then tries again).
    """
    hits: list[bool] = []

    def wrapper(execute, sql, params, many, context):
        if marker not in sql or hits:
            return execute(sql, params, many, context)
        pid = connection.connection.info.backend_pid
        done = threading.Event()
        params_ = connection.get_connection_params()
        for name in ("cursor_factory", "context", "prepare_threshold"):
            params_.pop(name, None)

        def poll():
            with psycopg.connect(**params_, autocommit=True) as killer:
                while not done.is_set():
                    row = killer.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE pid = %s AND state = 'active'",
                        [pid],
                    ).fetchone()
                    if row and row[0]:
                        hits.append(True)
                        return

        thread = threading.Thread(target=poll)
        thread.start()
        try:
            return execute(sql, params, many, context)
        finally:
            done.set()
            thread.join(timeout=10)

    with connection.execute_wrapper(wrapper):
        yield hits


def test_connection_killed_in_the_middle_of_an_ingest_batch(acme):
    enterprise, admin, members = acme
    _, plaintext = make_key()
    api = Api(plaintext)
    for attempt in range(8):
        batch = [
            event(f"ev-{attempt}-{i}", members[i % 4].email, tokens=10 + i) for i in range(1000)
        ]
        with kill_while_running("metrics_usageevent") as hits:
            response = api.events(batch)
        if hits:
            break
        assert response.status_code == 200  # finished before the kill: try a new batch
    else:
        pytest.fail("never caught the batch statement running")
    stored_before = UsageEvent.objects.filter(event_id__startswith=f"ev-{attempt}-").count()
    assert response.status_code == 503, response.content
    assert response["Retry-After"]
    assert response.json()["error"]["code"] == "unavailable"
    assert stored_before == 0  # nothing of the killed batch persists
    # The client resends the same ids: recorded exactly once, on a new connection.
    again = api.events(batch)
    assert again.status_code == 200, again.content
    assert again.json()["summary"]["recorded"] == len(batch)
    assert api.events(batch).json()["summary"]["duplicate"] == len(batch)
    call_command("reconcile_usage", stdout=io.StringIO())
    _chain_verifies()


# -- The API skips Django's per-request health check (one round trip fewer) ----------------


def _new_request_on_kept_connection() -> None:
    """What Django does when a request starts on a kept connection (CONN_HEALTH_CHECKS)."""
    connection.health_check_done = False


def test_the_api_sends_no_health_check_query_and_the_console_does(acme, monkeypatch, client):
    enterprise, admin, members = acme
    _, plaintext = make_key()
    api = Api(plaintext)
    client.force_login(members[0])
    assert api.quota(members[0].email).status_code == 200  # the connection is open
    checks = []
    wrapper = connections["default"]
    original = wrapper.is_usable
    monkeypatch.setattr(wrapper, "is_usable", lambda: checks.append(1) or original())
    _new_request_on_kept_connection()
    assert api.quota(members[0].email).status_code == 200
    assert api.events([event("hc-1", members[0].email)]).status_code == 200
    assert checks == []
    _new_request_on_kept_connection()
    assert client.get("/settings/").status_code == 200  # reads the session: a query
    assert checks == [1]


@pytest.mark.parametrize("call", ["quota", "events"])
def test_a_connection_the_server_dropped_between_api_requests_costs_no_error(acme, call):
    """Without the health check, the rate limiter's first statement reopens the connection."""
    enterprise, admin, members = acme
    _, plaintext = make_key()
    api = Api(plaintext)
    assert api.quota(members[0].email).status_code == 200
    _kill_own_backend()
    _new_request_on_kept_connection()
    if call == "quota":
        response = api.quota(members[0].email)
        assert response.status_code == 200, response.content
        assert response.json()["decision"] == "allowed"
    else:
        response = api.events([event("dropped-1", members[0].email)])
        assert response.status_code == 200, response.content
        assert response.json()["results"][0]["status"] == "recorded"
    assert connection.connection.info.backend_pid  # a fresh, working connection


def test_without_the_rate_limiter_the_api_keeps_the_health_check(acme, settings):
    enterprise, admin, members = acme
    settings.API_RATE_LIMIT_PER_MINUTE = 0
    _, plaintext = make_key()
    api = Api(plaintext)
    assert api.quota(members[0].email).status_code == 200
    _kill_own_backend()
    _new_request_on_kept_connection()
    assert api.quota(members[0].email).status_code == 200
