"""`python -m bench chaos`: ingest and allocation saves while PostgreSQL connections die.

Starts gunicorn (production settings) on its own data (a fresh "Chaos" enterprise), then
for --seconds runs concurrent ingest clients (unique event ids, retrying a batch with the
same ids on any error) and an admin saving random and hostile allocations, while a killer
terminates every app connection (pg_terminate_backend) every --kill-every seconds.
Afterwards it checks and prints: every event the API acknowledged is in the ledger exactly
once, no event counted twice (ledger tokens = tokens sent), reconcile_usage and
verify_activity_log pass, and no enterprise has more assigned than purchased. Exits 1 if any
check fails. Only connections named `asksage-chaos` (the app's) are ever killed.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.http_server import wait_until_healthy

ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "asksage-chaos"
MIN = 200_000


@dataclass
class Figures:
    batches: int = 0
    retries: int = 0
    gave_up: int = 0
    statuses: Counter = field(default_factory=Counter)
    acked: dict[str, int] = field(default_factory=dict)  # event id -> tokens
    sent: dict[str, int] = field(default_factory=dict)
    saves: Counter = field(default_factory=Counter)
    kills: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _app_database_url(url: str) -> str:
    return url + ("&" if "?" in url else "?") + f"application_name={APP_NAME}"


def _start_gunicorn(port: int, workers: int, database_url: str) -> subprocess.Popen:
    from django.conf import settings

    # Not PRODUCTION (plain HTTP on loopback), but DEBUG off like production, and this
    # process's SECRET_KEY so the admin session it created signs in there too.
    env = {
        **os.environ,
        "DATABASE_URL": _app_database_url(database_url),
        "PRODUCTION": "false",
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "LOG_LEVEL": "ERROR",
        "API_RATE_LIMIT_PER_MINUTE": "0",  # faults are the subject here, not the rate limit
    }
    cmd = [
        sys.executable, "-m", "gunicorn", "asksage_admin.wsgi",
        "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--timeout", "60",
        "--log-level", "error", "--access-logfile", "/dev/null",
    ]  # fmt: skip
    # A fixed argument list of our own: no untrusted input reaches the command line.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603
    wait_until_healthy(proc, port, seconds=30)
    return proc


def _post(port: int, path: str, body: dict, headers: dict) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST", path, json.dumps(body), {"Content-Type": "application/json", **headers}
        )
        response = conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw or b"{}")
        except ValueError:
            return response.status, {}
    finally:
        conn.close()


def _arrange(users: int):
    """A fresh active enterprise with a purchase, an admin and `users` members at MIN."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import Enterprise, User
    from accounts.stepup import VERIFIED_AT_KEY
    from metrics.keys import create_integration_key
    from tokens.models import TokenPurchase

    tag = uuid.uuid4().hex[:8]
    enterprise = Enterprise.objects.create(
        name=f"Chaos {tag}", slug=f"chaos-{tag}", status=Enterprise.Status.ACTIVE
    )
    TokenPurchase.objects.create(
        enterprise=enterprise,
        inference_tokens=(users + 1) * MIN + 5_000_000,
        training_tokens=1_000_000,
        reference=f"CHAOS-{tag}",
    )
    admin = User.objects.create_user(
        f"admin@{tag}.chaos.example",
        password=None,
        enterprise=enterprise,
        role=User.Role.ADMIN,
        max_inference_tokens=MIN,
    )
    members = [
        User.objects.create_user(
            f"u{i}@{tag}.chaos.example", password=None, enterprise=enterprise,
            max_inference_tokens=MIN,
        )
        for i in range(users)
    ]  # fmt: skip
    device = TOTPDevice.objects.create(user=admin, name="chaos", confirmed=True)
    client = Client()
    client.force_login(admin)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[VERIFIED_AT_KEY] = time.time()  # MFA just done: no step-up prompt for the saves
    session.save()
    key_row, key = create_integration_key(actor=None, name=f"chaos-{tag}")
    return enterprise, members, key, key_row.integration_id, session.session_key, tag


def _ingest_client(n, port, key, emails, batch, deadline, tag, figures: Figures) -> None:
    rng = random.Random(n)
    number = 0
    while time.monotonic() < deadline:
        number += 1
        events = [
            {
                "id": f"{tag}-{n}-{number}-{k}",
                "user": rng.choice(emails),
                "kind": "inference",
                "tokens": rng.randint(1, 1000),
                "occurred_at": "2026-11-15T12:00:00Z",
                "model": "chaos",
            }
            for k in range(batch)
        ]
        with figures.lock:
            figures.sent.update((e["id"], e["tokens"]) for e in events)
        for attempt in range(30):
            try:
                status, body = _post(
                    port, "/api/v1/usage/events", {"events": events},
                    {"Authorization": f"Bearer {key}"},
                )  # fmt: skip
            except OSError:
                status, body = 0, {}
            with figures.lock:
                figures.statuses[status] += 1
                if status == 200:
                    figures.batches += 1
                    tokens = {e["id"]: e["tokens"] for e in events}
                    for result in body["results"]:
                        if result["status"] in ("recorded", "duplicate"):
                            figures.acked[result["id"]] = tokens[result["id"]]
                    break
                figures.retries += 1
            # 429 (the API's rate limit) and 503 both say when to come back; keep it short.
            time.sleep(1.0 if status == 429 else 0.02 * (attempt + 1))
        else:
            with figures.lock:
                figures.gave_up += 1


def _admin(port, session_key, members, deadline, figures: Figures) -> None:
    """Random and hostile Save Changes; reads the current value (the editor's view) first."""
    from django.db import DatabaseError, connection

    from accounts.models import User

    rng = random.Random(7)
    csrf = secrets.token_hex(16)
    headers = {"Cookie": f"sessionid={session_key}; csrftoken={csrf}", "X-CSRFToken": csrf}
    while time.monotonic() < deadline:
        user = rng.choice(members)
        try:
            current = User.objects.values_list("max_inference_tokens", flat=True).get(pk=user.pk)
        except DatabaseError:
            connection.close()
            continue
        value = rng.choice(
            [MIN, MIN + rng.randint(0, 2_000_000), 50_000_000, -1, 0, 199_999, 10**19]
        )
        body = {
            "column": "inference",
            "changes": [{"id": user.pk, "value": value, "original": current}],
        }
        try:
            status, _ = _post(port, "/org/users/allocations/", body, headers)
        except OSError:
            status = 0
        with figures.lock:
            figures.saves[status] += 1
        time.sleep(0.01)
    connection.close()


def _killer(database_url: str, every: float, deadline: float, figures: Figures) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True, application_name="chaos-killer") as db:
        while time.monotonic() < deadline:
            time.sleep(every)
            row = db.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = %s",
                [APP_NAME],
            ).fetchone()
            with figures.lock:
                figures.kills += row[0]


def _database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    auth = s.get("USER") or "postgres"
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    return f"postgres://{auth}@{host}:{port}/{s['NAME']}"


def run_chaos(
    *,
    seconds: float = 20.0,
    clients: int = 4,
    batch: int = 50,
    users: int = 20,
    kill_every: float = 0.5,
    workers: int = 3,
    port: int = 8766,
    out=print,
) -> bool:
    """Run the chaos; print the figures; True when every check passed."""
    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django.db import connections
    from django.db.models import Count, Sum

    from accounts.models import Enterprise, User
    from metrics.models import UsageEvent
    from tokens.models import TokenPurchase

    enterprise, members, key, integration_id, session_key, tag = _arrange(users)
    database_url = _database_url()
    connections.close_all()
    proc = _start_gunicorn(port, workers, database_url)
    figures = Figures()
    deadline = time.monotonic() + seconds
    emails = [m.email for m in members]
    threads = [
        threading.Thread(
            target=_ingest_client, args=(n, port, key, emails, batch, deadline, tag, figures)
        )
        for n in range(clients)
    ]
    threads.append(
        threading.Thread(target=_admin, args=(port, session_key, members, deadline, figures))
    )
    threads.append(
        threading.Thread(target=_killer, args=(database_url, kill_every, deadline, figures))
    )
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 120)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    connections.close_all()

    ledger = UsageEvent.objects.filter(integration_id=integration_id)
    stored = dict(ledger.values_list("event_id", "tokens"))
    counts = ledger.aggregate(rows=Count("id"), tokens=Sum("tokens", default=0))
    missing = set(figures.acked) - set(stored)
    # Every stored event was sent with exactly these tokens (nothing invented or doubled).
    wrong_tokens = [i for i, t in stored.items() if figures.sent.get(i) != t]
    acked_tokens = sum(figures.acked.values())
    reconcile_ok, chain_ok = True, True
    sink = io.StringIO()
    try:
        call_command("reconcile_usage", stdout=sink)
    except CommandError as exc:
        reconcile_ok = False
        out(f"reconcile_usage: {exc}")
    try:
        call_command("verify_activity_log", by="bench chaos", stdout=sink)
    except CommandError as exc:
        chain_ok = False
        out(f"verify_activity_log: {exc}")
    over = []
    for ent in Enterprise.objects.all():
        bought = TokenPurchase.objects.filter(enterprise=ent).totals()
        given = User.objects.filter(enterprise=ent).aggregate(
            i=Sum("max_inference_tokens", default=0), e=Sum("max_embedding_tokens", default=0)
        )
        if given["i"] > bought["inference"] or given["e"] > bought["training"]:
            over.append(ent.name)
    low = User.objects.filter(
        enterprise__status="active", status="paid", max_inference_tokens__lt=MIN
    ).filter(enterprise=enterprise)
    ok = (
        not missing
        and not wrong_tokens
        and counts["rows"] == len(stored)
        and counts["tokens"] == sum(stored.values())
        and set(figures.acked) <= set(stored)
        and reconcile_ok
        and chain_ok
        and not over
        and not low.exists()
        and 500 not in figures.statuses
        and 500 not in figures.saves
        and figures.saves[200] > 0  # the admin really saved (signed in, not refused at the door)
    )
    out(f"Chaos: {clients} ingest clients x {batch}-event batches + 1 admin, {seconds:g} s, "
        f"app connections killed every {kill_every:g} s ({workers} gunicorn workers)")  # fmt: skip
    lines = [
        ("app connections killed", figures.kills),
        ("ingest batches acknowledged", figures.batches),
        ("ingest retries after an error", figures.retries),
        ("ingest batches given up", figures.gave_up),
        ("ingest HTTP statuses", dict(sorted(figures.statuses.items()))),
        ("allocation saves by HTTP status", dict(sorted(figures.saves.items()))),
        ("events acknowledged by the API", len(figures.acked)),
        ("events in the ledger", counts["rows"]),
        ("acknowledged but missing from the ledger", len(missing)),
        ("in the ledger more than once", counts["rows"] - len(stored)),
        ("ledger events never acknowledged (gave up)", len(set(stored) - set(figures.acked))),
        ("ledger events not sent as stored (doubled)", len(wrong_tokens)),
        ("tokens acknowledged / in the ledger", f"{acked_tokens:,} / {counts['tokens']:,}"),
        ("reconcile_usage", "passed" if reconcile_ok else "FAILED"),
        ("verify_activity_log", "passed" if chain_ok else "FAILED"),
        ("enterprises over-assigned", len(over)),
        ("Paid users under 200,000 (active)", low.count()),
        ("HTTP 500 answers", figures.statuses[500] + figures.saves[500]),
        ("result", "ALL CHECKS PASSED" if ok else "FAILED"),
    ]
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        out(f"  {name:<{width}}  {value}")
    return ok
