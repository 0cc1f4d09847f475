"""The activity log's hash chain: written by every writer, verified by the command,
refused edits in PostgreSQL, tampering (with the triggers disabled) caught and named."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from asksage_admin.core.audit import Action, log_activities, log_activity
from asksage_admin.core.chain import GENESIS
from asksage_admin.core.models import ActivityChainHead, ActivityLog, ChainVerification
from tests import factories

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def _write(n: int, actor=None) -> None:
    for i in range(n):
        log_activity(actor=actor, action=Action.SIGN_IN, target=f"t{i}", new={"i": i, "n": [1]})


def _verify(by: str = "tester") -> str:
    out = io.StringIO()
    call_command("verify_activity_log", by=by, stdout=out)
    return out.getvalue()


def _raw(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_rows_are_chained_in_order_from_genesis(org_admin):
    _write(3, org_admin)
    log_activities(
        [
            {"actor": org_admin, "action": Action.ALLOCATION_CHANGED, "target": f"u{i}"}
            for i in (1, 2)
        ]
    )
    rows = list(ActivityLog.objects.order_by("seq"))
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    head = ActivityChainHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (5, rows[-1].hash)


def test_verify_passes_on_an_intact_log_and_records_who_ran_it(org_admin):
    _write(4, org_admin)
    assert "5 rows" not in _verify("auditor-bot")
    run = ChainVerification.objects.latest_run()
    assert run.ok and run.rows_checked == 4 and run.verified_by == "auditor-bot"


def test_dashboard_and_activity_page_show_the_last_verification(org_admin):
    client = factories.verified_client(org_admin)
    assert "hash chain has not been verified yet" in client.get("/org/").content.decode()
    _write(2, org_admin)
    _verify("carol@auditors.example")
    for url in ("/org/", "/org/activity/"):
        page = client.get(url).content.decode()
        assert "hash chain verified" in page and "carol@auditors.example" in page, url


def test_activity_csv_carries_the_chain_and_verifies_offline(org_admin, tmp_path):
    _write(3, org_admin)
    log_activity(actor=org_admin, action=Action.ROLE_CHANGED, target="-x", old=None, new={"r": "é"})
    client = factories.verified_client(org_admin)
    body = b"".join(client.get("/org/exports/activity.csv").streaming_content).decode()
    header = next(csv.reader(io.StringIO(body)))
    assert {"Seq", "Previous hash", "Hash", "Enterprise ID"} <= set(header)
    path = tmp_path / "activity.csv"
    path.write_text(body, encoding="utf-8")
    script = ROOT / "scripts" / "verify_activity_csv.py"
    ok = subprocess.run([sys.executable, script, path], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # One character changed in the export: the offline check names the row.
    path.write_text(body.replace("t1", "t9", 1), encoding="utf-8")
    bad = subprocess.run([sys.executable, script, path], capture_output=True, text=True)
    assert bad.returncode == 1 and "do not match" in bad.stdout


# --- PostgreSQL: the triggers ------------------------------------------------------------

pg = pytest.mark.postgres
guarded = pytest.mark.guarded


@pg
@guarded
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE core_activitylog SET target = 'edited'",
        "DELETE FROM core_activitylog",
        "TRUNCATE core_activitylog",
    ],
)
def test_postgres_refuses_update_delete_truncate_on_the_log(db, sql):
    _write(2)
    _raw("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE waits for no pending FK check
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        _raw(sql)
    assert ActivityLog.objects.count() == 2


def _tamper(sql: str, params=()) -> None:
    """What a superuser could do: switch the guard off, change the log, switch it on."""
    _raw("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE waits for no pending FK check
    _raw("ALTER TABLE core_activitylog DISABLE TRIGGER core_activitylog_append_only")
    _raw(sql, params)
    _raw("ALTER TABLE core_activitylog ENABLE TRIGGER core_activitylog_append_only")


@pg
@guarded
def test_verify_names_an_edited_row(db):
    _write(5)
    victim = ActivityLog.objects.get(seq=3)
    _tamper("UPDATE core_activitylog SET target = 'someone-else' WHERE id = %s", [victim.pk])
    with pytest.raises(CommandError, match=rf"row id={victim.pk} \(seq 3\).*altered"):
        _verify()
    run = ChainVerification.objects.latest_run()
    assert not run.ok and f"id={victim.pk}" in run.problem


@pg
@guarded
def test_verify_names_the_row_after_a_deleted_one(db):
    _write(5)
    after = ActivityLog.objects.get(seq=4)
    _tamper("DELETE FROM core_activitylog WHERE seq = 3")
    with pytest.raises(CommandError, match=rf"row id={after.pk} \(seq 4\).*deleted"):
        _verify()


@pg
@guarded
def test_verify_catches_rows_removed_from_the_end(db):
    _write(5)
    _tamper("DELETE FROM core_activitylog WHERE seq >= 4")
    with pytest.raises(CommandError, match="last rows were deleted"):
        _verify()


@pg
@guarded
def test_verify_catches_a_rehashed_row(db):
    """Recomputing one row's hash after editing it breaks the link to the next row."""
    _write(4)
    _tamper("UPDATE core_activitylog SET hash = repeat('a', 64) WHERE seq = 2")
    with pytest.raises(CommandError, match=r"\(seq 2\)"):
        _verify()


@pg
@guarded
def test_postgres_refuses_edits_of_the_usage_and_purchase_ledgers(enterprise):
    from tests.metrics.usage_helpers import Api, event, make_key
    from tests.tokens.helpers import buy

    buy(enterprise, 1_000_000)
    factories.make_user("u@acme.test", enterprise=enterprise, inference=200_000)
    _, plaintext = make_key()
    assert Api(plaintext).events([event("e1", "u@acme.test")]).status_code == 200
    for table in ("metrics_usageevent", "tokens_tokenpurchase"):
        for sql in (f"UPDATE {table} SET id = id", f"DELETE FROM {table}"):
            with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
                _raw(sql)
