"""Personas shared by every test (STYLE: tests/conftest.py).

In CI (CI=true) the suite refuses to run anywhere but PostgreSQL: nothing is skipped
for lack of a component there.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings

from accounts.models import Enterprise, User
from metrics import keys
from tests import factories

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not is_postgres():
        pytest.exit("CI=true but DATABASE_URL is not PostgreSQL: refusing to run.", returncode=3)
    _flush_past_the_guards()


def _flush_past_the_guards() -> None:
    """Transactional tests empty the tables with TRUNCATE, which the activity log refuses.

    Only the test runner's flush runs with triggers off (session_replication_role, a
    superuser setting), never the code under test.
    """
    from django.db.backends.base.operations import BaseDatabaseOperations

    flush = BaseDatabaseOperations.execute_sql_flush
    if getattr(flush, "past_guards", False):
        return

    def execute_sql_flush(self, sql_list):
        if self.connection.vendor != "postgresql":
            return flush(self, sql_list)
        with self.connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
        try:
            return flush(self, sql_list)
        finally:
            with self.connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = DEFAULT")

    execute_sql_flush.past_guards = True
    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if is_postgres():
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache (the Users table keeps its Runs out order there)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def arrange_past_the_guards(request: pytest.FixtureRequest):
    """On PostgreSQL the test's own connection skips the guard triggers (pool within the
    purchase, Paid minimum, append-only tables), as a data loader would.

    Tests arrange rows directly (a Paid admin at 0 tokens, users before their purchase),
    and Django checks deferred constraints when a test ends. The service rules are what
    those tests prove; tests marked `guarded` (tests/core/) keep the triggers on and prove
    them, and requests from threads and the live server use their own connections, where
    every guard holds.
    """
    names = set(request.fixturenames)
    marker = request.node.get_closest_marker("django_db")
    transactional = bool({"transactional_db", "live_server"} & names) or bool(
        marker is not None and marker.kwargs.get("transaction")
    )
    uses_db = transactional or marker is not None or "db" in names
    if not uses_db or not is_postgres() or request.node.get_closest_marker("guarded"):
        yield
        return
    request.getfixturevalue("transactional_db" if transactional else "db")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
    yield
    if transactional and connection.connection is not None:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """Production-strength PBKDF2 costs ~0.4 s a user; the suite creates hundreds."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def forget_cached_keys() -> None:
    """API keys and key-use are remembered in process; each test's database starts anew."""
    keys.forget_cached_keys()


@pytest.fixture
def enterprise(db) -> Enterprise:
    return factories.make_enterprise("Acme Corp")


@pytest.fixture
def other_enterprise(db) -> Enterprise:
    return factories.make_enterprise("Globex")


@pytest.fixture
def org_admin(enterprise) -> User:
    return factories.make_user("admin@acme.test", enterprise=enterprise, role=User.Role.ADMIN)


@pytest.fixture
def auditor(enterprise) -> User:
    return factories.make_user("auditor@acme.test", enterprise=enterprise, role=User.Role.AUDITOR)


@pytest.fixture
def member(enterprise) -> User:
    return factories.make_user("member@acme.test", enterprise=enterprise)


@pytest.fixture
def other_admin(other_enterprise) -> User:
    return factories.make_user(
        "admin@globex.test", enterprise=other_enterprise, role=User.Role.ADMIN
    )


@pytest.fixture
def staff_user(db) -> User:
    return factories.make_user("sales@asksage.test", is_staff=True, is_superuser=True)


@pytest.fixture
def org_admin_client(org_admin):
    return factories.verified_client(org_admin)


@pytest.fixture
def auditor_client(auditor):
    return factories.verified_client(auditor)


@pytest.fixture
def member_client(member):
    return factories.signed_in_client(member)


@pytest.fixture
def other_admin_client(other_admin):
    return factories.verified_client(other_admin)


@pytest.fixture
def staff_client(staff_user):
    return factories.verified_client(staff_user)


@pytest.fixture
def unverified_admin_client(org_admin):
    """The enterprise admin after the password step only."""
    return factories.signed_in_client(org_admin)
