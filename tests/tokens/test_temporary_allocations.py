"""Temporary allocations: pool reservation, the end date in the enterprise's time zone, the
quota before the command runs, the command itself, the Paid minimum, and who may grant."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from asksage_admin.core.errors import Refused
from asksage_admin.core.models import ActivityLog
from metrics.quota import check_quota, usage_snapshot
from tests import factories
from tests.metrics.usage_helpers import Api, event, make_key
from tests.tokens.helpers import MIN, buy, logs, people, reload
from tokens import temporary
from tokens.models import TemporaryAllocation
from tokens.pool import AllocationChange, set_allocations
from tokens.queries import pool_totals

pytestmark = pytest.mark.django_db
UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_grant_reserves_pool_and_refuses_what_the_pool_cannot_cover(enterprise, org_admin):
    alice, bob = people(enterprise, 2)
    buy(enterprise, 2 * MIN + 500_000)  # two users at the minimum (the admin at 0), 500,000 free

    temporary.grant(
        actor=org_admin,
        enterprise=enterprise,
        user_id=alice.pk,
        extra=400_000,
        until=timezone.localdate() + dt.timedelta(days=10),
    )

    assert pool_totals(enterprise).inference.unassigned == 100_000
    with pytest.raises(Refused) as refused:
        temporary.grant(
            actor=org_admin,
            enterprise=enterprise,
            user_id=bob.pk,
            extra=200_000,
            until=timezone.localdate() + dt.timedelta(days=10),
        )
    assert refused.value.code == "over_pool"
    assert "Contact us at sales@asksage.ai" in refused.value.message
    # The inline editor's pool check counts the reserved extra too.
    with pytest.raises(Refused) as over:
        set_allocations(
            actor=org_admin,
            enterprise=enterprise,
            changes=[AllocationChange(bob.pk, "inference", MIN + 200_000, MIN)],
        )
    assert over.value.code == "over_pool"
    assert TemporaryAllocation.objects.count() == 1
    assert [log.new_value["extra_inference"] for log in logs("temporary_allocation_granted")] == [
        400_000
    ]


def test_expiry_across_a_non_utc_month_boundary(org_admin):
    """Auckland's 31 March ends at 11:00 UTC on 31 March: still March in UTC, April there."""
    auckland = factories.make_enterprise(time_zone="Pacific/Auckland")
    org_admin.enterprise = auckland
    org_admin.save()
    (user,) = people(auckland, 1)
    buy(auckland, 2 * MIN + 300_000)
    row = temporary.grant(
        actor=org_admin,
        enterprise=auckland,
        user_id=user.pk,
        extra=300_000,
        until=dt.date(2027, 3, 31),
        now=at("2027-03-10T00:00:00+00:00"),
    )
    assert row.ends_at == at("2027-03-31T11:00:00+00:00")  # midnight NZDT (UTC+13)

    before, after = at("2027-03-31T10:59:59+00:00"), at("2027-03-31T11:00:00+00:00")
    assert check_quota(user_email=user.email, kind="inference", tokens=1, now=before).remaining
    assert (
        check_quota(user_email=user.email, kind="inference", tokens=1, now=before).remaining
        == MIN + 300_000
    )
    decision = check_quota(user_email=user.email, kind="inference", tokens=1, now=after)
    assert decision.remaining == MIN
    assert decision.resets_at == dt.date(2027, 5, 1)  # already April in Auckland
    snapshot = usage_snapshot(reload(user), now=after)
    assert snapshot is not None and snapshot.inference_allocation == MIN
    assert snapshot.month == dt.date(2027, 4, 1)

    assert temporary.expire_due(before).ended == 0
    assert temporary.expire_due(after).ended == 1
    assert TemporaryAllocation.objects.get().reverted_at == after


def _expired_row(user, extra: int = 300_000) -> TemporaryAllocation:
    """An extra whose end passed an hour ago and that no command has marked ended yet."""
    now = timezone.now()
    return TemporaryAllocation.objects.create(
        enterprise=user.enterprise,
        user=user,
        extra_inference=extra,
        until=(now - dt.timedelta(days=1)).date(),
        ends_at=now - dt.timedelta(hours=1),
    )


def test_quota_honours_the_end_before_the_command_runs(enterprise, org_admin):
    (user,) = people(enterprise, 1)
    buy(enterprise, 10 * MIN)
    _expired_row(user)

    decision = check_quota(user_email=user.email, kind="inference", tokens=MIN + 1)

    assert decision.reason == "insufficient_quota"
    assert decision.remaining == MIN
    assert pool_totals(enterprise).inference.assigned == MIN  # the extra is free again
    assert TemporaryAllocation.objects.get().reverted_at is None  # the command has not run


def test_ingest_overage_counts_the_extra_only_until_its_end(enterprise, org_admin):
    alice, bob = people(enterprise, 2)
    buy(enterprise, 10 * MIN)
    temporary.grant(
        actor=org_admin,
        enterprise=enterprise,
        user_id=alice.pk,
        extra=300_000,
        until=timezone.localdate() + dt.timedelta(days=5),
    )
    _expired_row(bob)
    api = Api(make_key()[1])
    when = timezone.now().isoformat()

    response = api.events(
        [
            event("a1", alice.email, tokens=MIN + 100_000, occurred_at=when),
            event("b1", bob.email, tokens=MIN + 100_000, occurred_at=when),
        ]
    )

    overage = {r["id"]: r["overage"] for r in response.json()["results"]}
    assert overage == {"a1": False, "b1": True}


def test_expire_command_twice_ends_once_and_logs_once(enterprise):
    alice, bob = people(enterprise, 2)
    _expired_row(alice)
    _expired_row(bob, extra=50_000)
    first, second = StringIO(), StringIO()

    call_command("expire_allocations", stdout=first)
    call_command("expire_allocations", stdout=second)

    assert "Ended 2 temporary allocation(s) in 1 organization(s)" in first.getvalue()
    assert "Ended 0" in second.getvalue()
    ended = logs("temporary_allocation_ended")
    assert sorted(log.target for log in ended) == sorted([alice.email, bob.email])
    assert all(log.actor is None and log.actor_email == "expire_allocations" for log in ended)
    assert not TemporaryAllocation.objects.filter(reverted_at__isnull=True).exists()


def test_paid_minimum_holds_when_the_extra_ends(enterprise, org_admin):
    """The extra never counts toward the 200,000 minimum, so its end cannot break it."""
    (user,) = people(enterprise, 1)
    buy(enterprise, 10 * MIN)
    start = at("2027-01-10T12:00:00+00:00")
    temporary.grant(
        actor=org_admin,
        enterprise=enterprise,
        user_id=user.pk,
        extra=300_000,
        until=dt.date(2027, 1, 31),
        now=start,
    )
    # Lowering the base under the minimum is refused even though base + extra is 450,000.
    with pytest.raises(Refused) as refused:
        set_allocations(
            actor=org_admin,
            enterprise=enterprise,
            changes=[AllocationChange(user.pk, "inference", 150_000, MIN)],
        )
    assert refused.value.code == "minimum"

    temporary.expire_due(at("2027-02-01T00:00:00+00:00"))
    decision = check_quota(
        user_email=user.email, kind="inference", tokens=1, now=at("2027-02-01T00:00:00+00:00")
    )
    assert reload(user).max_inference_tokens == MIN
    assert decision.remaining == MIN


def test_grant_refused_for_a_paid_user_under_the_minimum(enterprise, org_admin):
    low = factories.make_user(enterprise=enterprise, inference=100_000)  # legacy row
    buy(enterprise, 10 * MIN)

    with pytest.raises(Refused) as refused:
        temporary.grant(
            actor=org_admin,
            enterprise=enterprise,
            user_id=low.pk,
            extra=300_000,
            until=timezone.localdate() + dt.timedelta(days=3),
        )

    assert refused.value.code == "minimum"
    assert not TemporaryAllocation.objects.exists()


def test_one_open_extra_per_user_and_ending_early_frees_the_pool(enterprise, org_admin):
    (user,) = people(enterprise, 1)
    buy(enterprise, 10 * MIN)
    until = timezone.localdate() + dt.timedelta(days=3)
    temporary.grant(actor=org_admin, enterprise=enterprise, user_id=user.pk, extra=1, until=until)

    with pytest.raises(Refused) as refused:
        temporary.grant(
            actor=org_admin, enterprise=enterprise, user_id=user.pk, extra=5, until=until
        )
    assert "already has +1" in refused.value.message

    temporary.end_early(actor=org_admin, enterprise=enterprise, user_id=user.pk)
    temporary.grant(actor=org_admin, enterprise=enterprise, user_id=user.pk, extra=5, until=until)
    assert TemporaryAllocation.objects.active().get().extra_inference == 5


@pytest.mark.parametrize(
    ("until", "message"),
    [(-1, "has passed"), (400, "within 366 days")],
)
def test_end_date_in_the_past_or_too_far_is_refused(enterprise, org_admin, until, message):
    (user,) = people(enterprise, 1)
    buy(enterprise, 10 * MIN)
    with pytest.raises(Refused, match=message):
        temporary.grant(
            actor=org_admin,
            enterprise=enterprise,
            user_id=user.pk,
            extra=1000,
            until=timezone.localdate() + dt.timedelta(days=until),
        )


# --- Pages -----------------------------------------------------------------------------


def _grant_url(user) -> str:
    return f"/org/users/{user.pk}/temporary/"


def test_admin_grants_from_the_user_page_and_the_table_shows_it(
    org_admin_client, enterprise, member
):
    buy(enterprise, 10 * MIN)
    member.max_inference_tokens = 800_000
    member.save()
    until = timezone.localdate() + dt.timedelta(days=20)

    response = org_admin_client.post(
        _grant_url(member), {"extra": "200,000", "until": until.isoformat()}
    )

    assert response.status_code == 302
    page = org_admin_client.get(f"/org/users/{member.pk}/").content.decode()
    assert f"+200,000</strong> on top of the allocation until the end of {until.day}" in page
    table = org_admin_client.get("/org/users/").content.decode()
    assert f'data-temp="(+200,000 until {until.day} {until:%b})"' in table
    assert ">800,000<" in table  # the cell (and the inline editor) keep the base allocation


def test_users_table_query_count_does_not_grow_with_temporary_rows(
    org_admin_client, enterprise, org_admin
):
    buy(enterprise, 100 * MIN)
    until = timezone.localdate() + dt.timedelta(days=20)

    def page_queries(n: int) -> int:
        for user in people(enterprise, n):
            temporary.grant(
                actor=org_admin, enterprise=enterprise, user_id=user.pk, extra=10, until=until
            )
        with CaptureQueriesContext(connection) as ctx:
            assert org_admin_client.get("/org/users/").status_code == 200
        return len(ctx.captured_queries)

    assert page_queries(2) == page_queries(12)


@pytest.mark.parametrize(
    ("client_fixture", "status"),
    [("auditor_client", 403), ("member_client", 403), ("other_admin_client", 404)],
)
def test_wrong_role_or_other_enterprise_cannot_grant_or_end(
    request, client_fixture, status, enterprise, member
):
    buy(enterprise, 10 * MIN)
    client = request.getfixturevalue(client_fixture)
    until = (timezone.localdate() + dt.timedelta(days=3)).isoformat()

    grant = client.post(_grant_url(member), {"extra": "1000", "until": until})
    end = client.post(f"/org/users/{member.pk}/temporary/end/")

    assert (grant.status_code, end.status_code) == (status, status)
    assert not TemporaryAllocation.objects.exists()
    assert not ActivityLog.objects.filter(action__startswith="temporary").exists()


def test_every_raw_sql_reader_states_the_same_rule():
    """The ingest statement spells the rule out (it stays one literal text for pgbench)."""
    from metrics.ingest_sql import BATCH_SQL
    from tokens.models import ACTIVE_SQL

    assert ACTIVE_SQL.format(now="%(now)s") in BATCH_SQL


# --- The database's last word (PostgreSQL guard, on) -----------------------------------


def _commit_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.mark.postgres
@pytest.mark.guarded
def test_the_pool_guard_counts_running_extras_only(enterprise):
    from django.db import IntegrityError, transaction

    (user,) = people(enterprise, 1)
    buy(enterprise, 1_000_000)
    _commit_check()
    now = timezone.now()

    def extra(ends_at: dt.datetime) -> None:
        TemporaryAllocation.objects.create(
            enterprise=enterprise,
            user=user,
            extra_inference=900_000,
            until=ends_at.date(),
            ends_at=ends_at,
        )
        _commit_check()

    with pytest.raises(IntegrityError, match="would assign 1,100,000"), transaction.atomic():
        extra(now + dt.timedelta(days=1))  # a bug that skipped the service's check
    with transaction.atomic():
        extra(now - dt.timedelta(seconds=1))  # already ended: no longer reserves the pool
