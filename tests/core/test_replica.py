"""The read replica: report pages and exports read from it, writes never go there, and a
session that just wrote reads from the primary (read-your-writes).

The `replica` alias here is a second connection to the same test database, as the
`TEST: {"MIRROR": "default"}` setting makes it. Being a separate connection, it only sees
committed rows, so these tests commit (transaction=True); a lagging replica is a replica
connection holding a REPEATABLE READ snapshot taken before the admin's save.
"""

from __future__ import annotations

import copy
import hashlib
import re
import time

import pytest
from django.db import connections, router, transaction
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from asksage_admin.core.models import ActivityLog
from asksage_admin.core.replica import (
    PRIMARY_UNTIL,
    REPLICA,
    ReadYourWritesMiddleware,
    replica_reads,
)
from metrics import user_views, views
from tests import factories
from tests.tokens.helpers import MIN, buy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

REPORT_PAGES = [
    "/org/users/",
    "/org/token-statistics/",
    "/org/token-usage/",
    "/org/monthly/",
    "/org/exports/",
    "/org/activity/",
]
EXPORTS = [
    "/org/exports/token-usage.csv",
    "/org/exports/users.csv",
    "/org/exports/users-with-tokens.csv",
    "/org/exports/activity.csv",
]
WRITE_SQL = re.compile(r"^\s*(INSERT|UPDATE|DELETE|TRUNCATE|ALTER|CREATE|DROP)\b", re.I)


@pytest.fixture
def replica(transactional_db):
    """A `replica` alias: another connection to the test database (what MIRROR gives)."""
    connections.settings[REPLICA] = copy.deepcopy(connections["default"].settings_dict)
    # Connected here: the test case only lets aliases it knew at set-up open a connection.
    connections[REPLICA].connect()
    yield connections[REPLICA]
    connections[REPLICA].close()
    del connections[REPLICA]
    del connections.settings[REPLICA]


@pytest.fixture
def acme(replica):
    enterprise = factories.make_enterprise("Acme Corp")
    buy(enterprise, 1_000_000, 1_000_000)
    admin = factories.make_user("admin@acme.test", enterprise=enterprise, role=User.Role.ADMIN)
    auditor = factories.make_user(
        "auditor@acme.test", enterprise=enterprise, role=User.Role.AUDITOR
    )
    ann = factories.make_user("ann@acme.test", enterprise=enterprise, inference=MIN)
    return admin, auditor, ann


def _get(client, url: str):
    """GET `url`, reading a streamed body to its end (exports read while they stream)."""
    response = client.get(url)
    if response.streaming:
        response.content_bytes = b"".join(response.streaming_content)
    return response


def _save_allocation(client, user: User, inference: str):
    data = {
        "max_inference_tokens": inference,
        "max_embedding_tokens": "0",
        "loaded_inference": MIN,
        "loaded_embedding": 0,
    }
    return client.post(f"/org/users/{user.pk}/", data)


@pytest.mark.parametrize("url", REPORT_PAGES + EXPORTS)
def test_report_pages_and_exports_read_from_the_replica(acme, replica, url):
    admin, _, _ = acme
    client = factories.verified_client(admin)
    with CaptureQueriesContext(replica) as on_replica:
        response = _get(client, url)
    assert response.status_code == 200
    assert on_replica.captured_queries, f"{url} did not read from the replica"
    assert not [q for q in on_replica.captured_queries if WRITE_SQL.match(q["sql"])]


def test_saving_an_allocation_never_touches_the_replica(acme, replica):
    admin, _, ann = acme
    client = factories.verified_client(admin)
    with CaptureQueriesContext(replica) as on_replica:
        assert _save_allocation(client, ann, "450000").status_code == 302
    assert on_replica.captured_queries == []
    ann.refresh_from_db()
    assert ann.max_inference_tokens == 450_000


def test_unmarked_pages_read_from_the_primary(acme, replica):
    admin, _, ann = acme
    client = factories.verified_client(admin)
    with CaptureQueriesContext(replica) as on_replica:
        assert client.get("/org/").status_code == 200
        assert client.get(f"/org/users/{ann.pk}/").status_code == 200
        assert client.get("/settings/").status_code == 200
    assert on_replica.captured_queries == []


def test_marked_views_are_the_report_reads():
    marked = {
        name
        for module in (views, user_views)
        for name, value in vars(module).items()
        if getattr(value, "replica_reads", False)
    }
    assert marked == {
        "users",
        "token_statistics",
        "token_usage",
        "monthly",
        "exports_page",
        "activity",
        "token_usage_csv",
        "users_csv",
        "users_with_tokens_csv",
        "activity_csv",
    }


@pytest.fixture
def lagging_replica(replica):
    """The replica stops at this moment: later commits on the primary are not in it."""
    with replica.cursor() as cursor:
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT count(*) FROM accounts_user")  # the snapshot is taken here
    yield replica
    with replica.cursor() as cursor:
        cursor.execute("ROLLBACK")


def test_export_rows_come_from_the_replica_and_its_log_row_goes_to_the_primary(
    acme, lagging_replica
):
    admin, auditor, _ = acme
    factories.make_user("bob@acme.test", enterprise=admin.enterprise)  # after the snapshot
    client = factories.verified_client(auditor)
    with CaptureQueriesContext(lagging_replica) as on_replica:
        csv = _get(client, "/org/exports/users.csv").content_bytes
    # COPY runs on a raw cursor (not captured): the stale rows show where it ran.
    assert b"ann@acme.test" in csv and b"bob@acme.test" not in csv
    assert not [q for q in on_replica.captured_queries if WRITE_SQL.match(q["sql"])]
    logged = ActivityLog.objects.get(action=ActivityLog.Action.EXPORT_DOWNLOADED)
    # Written on the primary; its row count is the file's (counted on the replica: no Bob).
    assert (logged.new_value["export"], logged.new_value["rows"]) == ("users", 3)
    assert logged.new_value["sha256"] == hashlib.sha256(csv).hexdigest()


def _users_page(client) -> str:
    return client.get("/org/users/?q=ann").content.decode()


def test_lagging_replica_cannot_hide_the_admins_own_save(acme, lagging_replica):
    admin, auditor, ann = acme
    admin_client = factories.verified_client(admin)
    assert _save_allocation(admin_client, ann, "450000").status_code == 302
    with CaptureQueriesContext(lagging_replica) as on_replica:
        assert "450,000" in _users_page(admin_client)
    assert on_replica.captured_queries == []
    # Another session, which wrote nothing, still reads the stale replica: the lag is real.
    stale = _users_page(factories.verified_client(auditor))
    assert "200,000" in stale and "450,000" not in stale


def test_without_the_read_your_writes_mark_the_admin_would_see_the_old_allocation(
    acme, lagging_replica
):
    admin, _, ann = acme
    client = factories.verified_client(admin)
    assert _save_allocation(client, ann, "450000").status_code == 302
    session = client.session
    del session[PRIMARY_UNTIL]  # broken on purpose: the middleware's mark removed
    session.save()
    page = _users_page(client)
    assert "450,000" not in page and "200,000" in page


def test_the_session_reads_from_the_replica_again_after_the_window(acme, replica, settings):
    admin, _, ann = acme
    client = factories.verified_client(admin)
    assert _save_allocation(client, ann, "450000").status_code == 302
    window = client.session[PRIMARY_UNTIL] - time.time()
    assert settings.REPLICA_STICKY_SECONDS - 1 <= window <= settings.REPLICA_STICKY_SECONDS
    session = client.session
    session[PRIMARY_UNTIL] = time.time() - 1
    session.save()
    with CaptureQueriesContext(replica) as on_replica:
        assert "450,000" in _users_page(client)
    assert on_replica.captured_queries


def test_reads_inside_a_transaction_and_session_reads_stay_on_the_primary(replica):
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    def view(request: HttpRequest) -> HttpResponse:
        outside = router.db_for_read(User)
        with transaction.atomic():
            inside = router.db_for_read(User)
        return HttpResponse(f"{outside} {inside} {router.db_for_read(Session)}")

    request = RequestFactory().get("/")
    request.session = SessionStore()
    response = ReadYourWritesMiddleware(replica_reads(view))(request)
    assert response.content == b"replica default default"
    assert router.db_for_read(User) == "default"  # outside a marked view
